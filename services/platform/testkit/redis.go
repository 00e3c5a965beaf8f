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
	cmd    *exec.Cmd
}

// Pause stops the server process (SIGSTOP): connections stay open and
// commands queue unanswered, as with a Redis that hangs.
func (s *RedisServer) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT); it then answers what queued.
func (s *RedisServer) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Redis starts a redis-server of its own for t, on a free loopback port with
// its own temp dir and no persistence, and stops it when t ends. Without the
// binary the test is skipped, except under CI (CI set), where that fails.
// The client has the product's timeouts and retries (redisx.WithDefaults).
func Redis(t testing.TB) redis.UniversalClient {
	t.Helper()
	return StartRedis(t).Client
}

// StartRedis is Redis with a handle on the server process.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server not found on PATH, and CI is set: install it (apt-get install redis-server)")
		}
		t.Skip("skipped: redis-server is not installed (apt-get install redis-server); storage tests need a real one")
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--logfile", filepath.Join(dir, "redis.log"), "--daemonize", "no")
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting redis-server: %v", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		o := redisx.WithDefaults(&redis.UniversalOptions{Addrs: []string{addr}})
		c := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			MaxRetries: o.MaxRetries, DialTimeout: o.DialTimeout})
		if lastErr = waitPing(c, cmd); lastErr == nil {
			t.Cleanup(func() {
				_ = c.Close()
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			})
			return &RedisServer{Addr: addr, Client: c, cmd: cmd}
		}
		_ = c.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	t.Fatalf("redis-server did not start: %v\n%s", lastErr, log)
	return nil
}

func waitPing(c *redis.Client, cmd *exec.Cmd) error {
	exited := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited (port taken?): %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return err
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
// same on both.
func Backends(t *testing.T, f func(t *testing.T, rdb redis.UniversalClient)) {
	t.Run("redis-server", func(t *testing.T) { f(t, Redis(t)) })
	t.Run("embedded", func(t *testing.T) { f(t, Embedded(t)) })
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

// Logger is a logger for tests: quiet unless KN_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("KN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
