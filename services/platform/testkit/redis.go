// Package testkit is the test harness every service shares: a real
// redis-server per test, the embedded store as a second backend, and a
// service served in-process over a real loopback gRPC connection.
package testkit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server process of a test's own.
type RedisServer struct {
	Addr   string
	Client redis.UniversalClient
	Dir    string
	cmd    *exec.Cmd
	exited <-chan struct{} // closed when the process has ended
	args   []string
}

// Pause stops the server process (SIGSTOP): connections stay open and
// commands queue unanswered, as with a Redis that hangs.
func (s *RedisServer) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT); it then answers what queued.
func (s *RedisServer) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Kill ends the server at once (SIGKILL), as a crash would: nothing is
// flushed, clients see their connections drop.
func (s *RedisServer) Kill() error {
	err := s.cmd.Process.Kill()
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("redis-server at %s did not end after SIGKILL", s.Addr)
	}
	return err
}

// Restart starts the server again, after Kill, on the same address and
// directory (with persistence off it comes back empty).
func (s *RedisServer) Restart() error { return s.restart() }

// RestartAsReplicaOf starts the server again, after Kill, as a replica of
// the server at primary: how a node without persistence must come back
// after a failover (Redis's replication docs: an empty node that restarts
// as a primary can have the replicas wipe themselves by syncing from it,
// before the Sentinels demote it).
func (s *RedisServer) RestartAsReplicaOf(primary string) error {
	host, port, err := net.SplitHostPort(primary)
	if err != nil {
		return err
	}
	return s.restart("--replicaof", host, port)
}

func (s *RedisServer) restart(extra ...string) error {
	cmd, err := spawn(s.args[0], append(append([]string{}, s.args[1:]...), extra...)...)
	if err != nil {
		return fmt.Errorf("restarting redis-server: %w", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	exited, err := waitPing(c, cmd)
	s.cmd, s.exited = cmd, exited
	if err != nil {
		return fmt.Errorf("redis-server did not restart: %w", err)
	}
	return nil
}

// Redis starts a redis-server of its own for t, on a free loopback port with
// its own temp dir and no persistence, and stops it when t ends. Without the
// binary the test is skipped, except under CI (CI set), where that fails.
// The client has the product's timeouts and retries (redisx.WithDefaults).
//
// With KN_TEST_REDIS=cluster or KN_TEST_REDIS=sentinel (make test-cluster)
// the client is instead one to a 3-master Redis Cluster or to a primary
// with a replica behind 3 Sentinels (see SharedCluster, SharedSentinel),
// emptied when t ends: the same tests then prove that every multi-key step
// stays in one slot and that the client follows a Sentinel topology.
// Options(client) gives the options to reach the same Redis again.
func Redis(t testing.TB) redis.UniversalClient {
	t.Helper()
	switch Topology() {
	case "cluster":
		return SharedCluster(t).Client(t)
	case "sentinel":
		return SharedSentinel(t).Client(t)
	}
	return StartRedis(t).Client
}

// Topology is the Redis that Redis gives tests: "standalone" (default),
// "cluster" or "sentinel", from KN_TEST_REDIS.
func Topology() string {
	switch v := os.Getenv("KN_TEST_REDIS"); v {
	case "cluster", "sentinel":
		return v
	}
	return "standalone"
}

// Options are go-redis options reaching the same Redis as c (a client
// from Redis, Embedded, StartRedis or a topology's Client), for code that
// connects by itself (the all-in-one).
func Options(t testing.TB, c redis.UniversalClient) *redis.UniversalOptions {
	t.Helper()
	if v, ok := optionsByClient.Load(c); ok {
		o := *v.(*redis.UniversalOptions)
		return &o
	}
	if sc, ok := c.(*redis.Client); ok {
		return &redis.UniversalOptions{Addrs: []string{sc.Options().Addr}}
	}
	t.Fatalf("testkit.Options: %T was not made by testkit", c)
	return nil
}

// RedisArgs are the command-line flags (-redis, and -redis-master behind
// Sentinels) that reach the same Redis as c, for a test that runs one of
// the binaries' commands.
func RedisArgs(t testing.TB, c redis.UniversalClient) []string {
	t.Helper()
	o := Options(t, c)
	args := []string{"-redis", strings.Join(o.Addrs, ",")}
	if o.MasterName != "" {
		args = append(args, "-redis-master", o.MasterName)
	}
	return args
}

var optionsByClient sync.Map // redis.UniversalClient → *redis.UniversalOptions

// redisServerBin finds redis-server, or skips t (fails it under CI).
func redisServerBin(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server not found on PATH, and CI is set: install it (apt-get install redis-server)")
		}
		t.Skip("skipped: redis-server is not installed (apt-get install redis-server); storage tests need a real one")
	}
	return bin
}

// StartRedis is Redis with a handle on the server process; always a
// standalone server, whatever KN_TEST_REDIS says.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	s := startServer(t, redisServerBin(t), t.TempDir())
	t.Cleanup(func() {
		_ = s.Client.Close()
		_ = s.Kill()
	})
	return s
}

// startServer starts redis-server (with extra arguments) in dir on a free
// port, retrying a port another process took meanwhile. Its cleanup is the
// caller's. Processes are started so that they die with the test binary
// (spawn), since shared topologies outlive any one test.
func startServer(t testing.TB, bin, dir string, extra ...string) *RedisServer {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--logfile", filepath.Join(dir, "redis.log"), "--daemonize", "no"}, extra...)
		cmd, err := spawn(args[0], args[1:]...)
		if err != nil {
			t.Fatalf("starting redis-server: %v", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		o := redisx.WithDefaults(&redis.UniversalOptions{Addrs: []string{addr}})
		c := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			MaxRetries: o.MaxRetries, DialTimeout: o.DialTimeout})
		exited, err := waitPing(c, cmd)
		if lastErr = err; err == nil {
			return &RedisServer{Addr: addr, Client: c, Dir: dir, cmd: cmd, exited: exited, args: args}
		}
		_ = c.Close()
		_ = cmd.Process.Kill()
		<-exited
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	t.Fatalf("redis-server did not start: %v\n%s", lastErr, log)
	return nil
}

// waitPing waits for the server cmd runs to answer; the channel returned
// closes when the process ends.
func waitPing(c *redis.Client, cmd *exec.Cmd) (<-chan struct{}, error) {
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return exited, nil
		}
		select {
		case <-exited:
			return exited, fmt.Errorf("redis-server exited (port taken?): %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return exited, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Embedded starts the all-in-one binary's embedded store for t.
func Embedded(t testing.TB) redis.UniversalClient {
	t.Helper()
	e, err := redisx.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: e.Addr()})
	t.Cleanup(func() {
		_ = c.Close()
		e.Close()
	})
	return c
}

// Backends runs f once against a real redis-server and once against the
// embedded store: the product runs on both, so its storage must behave the
// same on both. With KN_TEST_REDIS=cluster or sentinel the redis-server
// half runs on that topology and the embedded half is skipped: it would
// repeat what the standalone run (make test) proves, at the cost of time
// that make test-cluster, in CI, does not have.
func Backends(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("redis-server", func(t *testing.T) { f(t, Redis(t)) })
	t.Run("embedded", func(t *testing.T) {
		if top := Topology(); top != "standalone" {
			t.Skipf("skipped with KN_TEST_REDIS=%s: the embedded store is tested by the standalone run (make test)", top)
		}
		f(t, Embedded(t))
	})
}

// KeyCount is the number of keys in rdb, for asserting that a rejected
// request wrote nothing.
func KeyCount(t testing.TB, rdb redis.UniversalClient) int64 {
	t.Helper()
	n, err := rdb.DBSize(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Keys is every key matching pattern in rdb, on every master of a Cluster
// (KEYS on a cluster client asks one node only).
func Keys(t testing.TB, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	ctx := context.Background()
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		keys, err := rdb.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	var mu sync.Mutex
	var keys []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		ks, err := m.Keys(ctx, pattern).Result()
		mu.Lock()
		keys = append(keys, ks...)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// go-redis's own lines (pool, Sentinel) go where the tests' logs go.
func init() { redisx.UseLogger(Logger()) }

// Logger is a logger for tests: quiet unless KN_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("KN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
