package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/redis/go-redis/v9"
)

// spawn starts a process that the kernel kills when the test binary dies
// (PR_SET_PDEATHSIG), so servers shared by a package's tests (a Cluster, a
// Sentinel set) never outlive it, without every package needing a TestMain.
// The death signal follows the thread that forked, not the process, hence
// one OS thread locked for the binary's whole life that does every fork.
func spawn(name string, args ...string) (*exec.Cmd, error) {
	spawnerOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the binary
			for r := range spawnReqs {
				cmd := exec.Command(r.name, r.args...)
				cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				r.done <- spawnRes{cmd, cmd.Start()}
			}
		}()
	})
	done := make(chan spawnRes, 1)
	spawnReqs <- spawnReq{name, args, done}
	r := <-done
	return r.cmd, r.err
}

type spawnReq struct {
	name string
	args []string
	done chan spawnRes
}

type spawnRes struct {
	cmd *exec.Cmd
	err error
}

var (
	spawnerOnce sync.Once
	spawnReqs   chan spawnReq
)

// Cluster is a Redis Cluster of three masters (no replicas) on loopback
// ports, made with redis-cli --cluster create.
type Cluster struct {
	Nodes []*RedisServer
	Addrs []string
	admin *redis.ClusterClient
	root  string
}

// StartCluster starts a Cluster for t alone; it stops when t ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c := startCluster(t)
	t.Cleanup(func() { c.stop(); _ = os.RemoveAll(c.root) })
	return c
}

var (
	sharedMu       sync.Mutex
	sharedCluster  *Cluster
	sharedSentinel *Sentinel
)

// SharedCluster is one Cluster for every test of the binary (making one
// takes seconds); it dies with the binary. Each test takes its own client
// (Client) and finds it empty.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedCluster == nil {
		sharedCluster = startCluster(t)
	}
	return sharedCluster
}

func startCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := redisServerBin(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found on PATH (it comes with redis-server): %v", err)
	}
	// Outlives t when shared, so not t.TempDir.
	root, err := os.MkdirTemp("", "kn-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{root: root}
	for i := range 3 {
		dir := filepath.Join(root, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		n := startServer(t, bin, dir, "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-node-timeout", "2000")
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	args := append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		c.stop()
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.admin = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok := true
		for _, n := range c.Nodes {
			info, err := n.Client.ClusterInfo(context.Background()).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			c.stop()
			t.Fatalf("cluster did not reach cluster_state:ok")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// Client is a new cluster client for t with the product's timeouts, closed
// when t ends, after which the cluster is emptied for the next test.
func (c *Cluster) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	o := redisx.WithDefaults(&redis.UniversalOptions{Addrs: c.Addrs})
	cl := redis.NewUniversalClient(o)
	optionsByClient.Store(cl, o)
	t.Cleanup(func() {
		_ = cl.Close()
		optionsByClient.Delete(cl)
		err := c.admin.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
			return m.FlushAll(ctx).Err()
		})
		if err != nil {
			t.Errorf("emptying the cluster: %v", err)
		}
	})
	return cl
}

func (c *Cluster) stop() {
	if c.admin != nil {
		_ = c.admin.Close()
	}
	for _, n := range c.Nodes {
		_ = n.Client.Close()
		_ = n.Kill()
	}
}

// Sentinel is a primary with one replica, watched by three Sentinels
// (quorum 2) on loopback ports, under MasterName. In a set of a test's own
// (StartSentinel) the primary is judged down after one second, so a
// failover (Sentinels promoting the replica) takes a few seconds; the
// shared set (SharedSentinel), which no test fails over, gives it five, so
// that a loaded machine (make test-cluster runs three suites side by side
// under -race) never makes the Sentinels fail it over in the middle of
// tests that do not expect it.
type Sentinel struct {
	MasterName string
	Primary    *RedisServer
	Replica    *RedisServer
	Sentinels  []*RedisServer
	// SentinelAddrs are what a client is given (with MasterName).
	SentinelAddrs []string
	root          string
}

// StartSentinel starts a Sentinel set for t alone (the failover tests kill
// its primary); it stops when t ends.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s := startSentinel(t, ownDownAfter)
	t.Cleanup(func() { s.stop(); _ = os.RemoveAll(s.root) })
	return s
}

// SharedSentinel is one Sentinel set for every test of the binary, like
// SharedCluster.
func SharedSentinel(t testing.TB) *Sentinel {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedSentinel == nil {
		sharedSentinel = startSentinel(t, sharedDownAfter)
	}
	return sharedSentinel
}

// Sentinels' down-after-milliseconds: how long the primary may not answer
// before it is judged down.
const (
	ownDownAfter    = time.Second
	sharedDownAfter = 5 * time.Second
)

func startSentinel(t testing.TB, downAfter time.Duration) *Sentinel {
	t.Helper()
	bin := redisServerBin(t)
	root, err := os.MkdirTemp("", "kn-sentinel-")
	if err != nil {
		t.Fatal(err)
	}
	mkdir := func(name string) string {
		d := filepath.Join(root, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	s := &Sentinel{MasterName: "kn", root: root}
	s.Primary = startServer(t, bin, mkdir("primary"))
	host, port, _ := strings.Cut(s.Primary.Addr, ":")
	s.Replica = startServer(t, bin, mkdir("replica"), "--replicaof", host, port)
	// The replica must hold a full copy before Sentinels may promote it.
	deadline := time.Now().Add(15 * time.Second)
	for {
		info, _ := s.Replica.Client.Info(context.Background(), "replication").Result()
		if strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			s.stop()
			t.Fatalf("replica did not sync with the primary:\n%s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range 3 {
		dir := mkdir("sentinel" + strconv.Itoa(i))
		conf := filepath.Join(dir, "sentinel.conf")
		// Sentinel rewrites its config file as it learns the topology.
		body := fmt.Sprintf("sentinel resolve-hostnames no\n"+
			"sentinel monitor %[1]s %[2]s %[3]s 2\n"+
			"sentinel down-after-milliseconds %[1]s %[4]d\n"+
			"sentinel failover-timeout %[1]s 5000\n"+
			"sentinel parallel-syncs %[1]s 1\n", s.MasterName, host, port, downAfter.Milliseconds())
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		// redis-server <config> --sentinel: the config file must come first.
		n := startSentinelServer(t, bin, dir, conf)
		s.Sentinels = append(s.Sentinels, n)
		s.SentinelAddrs = append(s.SentinelAddrs, n.Addr)
	}
	// Every Sentinel must know the replica and the other Sentinels before
	// a failover can happen.
	deadline = time.Now().Add(20 * time.Second)
	for {
		ready := true
		for _, n := range s.Sentinels {
			sc := sentinelClient(n)
			m, err := sc.Master(context.Background(), s.MasterName).Result()
			_ = sc.Close()
			if err != nil || m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
				ready = false
			}
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			s.stop()
			t.Fatalf("sentinels did not discover the replica and each other")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

func startSentinelServer(t testing.TB, bin, dir, conf string) *RedisServer {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		args := []string{bin, conf, "--sentinel", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--logfile", filepath.Join(dir, "sentinel.log"), "--daemonize", "no"}
		cmd, err := spawn(args[0], args[1:]...)
		if err != nil {
			t.Fatalf("starting redis sentinel: %v", err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		c := redis.NewClient(&redis.Options{Addr: addr})
		exited, err := waitPing(c, cmd)
		if lastErr = err; err == nil {
			return &RedisServer{Addr: addr, Client: c, Dir: dir, cmd: cmd, exited: exited, args: args}
		}
		_ = c.Close()
		_ = cmd.Process.Kill()
		<-exited
	}
	t.Fatalf("redis sentinel did not start: %v", lastErr)
	return nil
}

func sentinelClient(n *RedisServer) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: n.Addr})
}

// Options are the go-redis options of a client of the set: the Sentinels
// and the master name, with the product's timeouts.
func (s *Sentinel) Options() *redis.UniversalOptions {
	return redisx.WithDefaults(&redis.UniversalOptions{Addrs: s.SentinelAddrs, MasterName: s.MasterName})
}

// Client is a new Sentinel-aware client for t, closed when t ends, after
// which the data is emptied for the next test.
func (s *Sentinel) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	o := s.Options()
	c := redis.NewUniversalClient(o)
	optionsByClient.Store(c, o)
	t.Cleanup(func() {
		_ = c.Close()
		optionsByClient.Delete(c)
		if err := s.Master().FlushAll(context.Background()).Err(); err != nil {
			t.Errorf("emptying the primary: %v", err)
		}
	})
	return c
}

// Master is a client of whichever server the Sentinels name primary now.
func (s *Sentinel) Master() *redis.Client {
	addr, err := s.MasterAddr()
	if err != nil || addr == s.Primary.Addr {
		return s.Primary.Client.(*redis.Client)
	}
	return s.Replica.Client.(*redis.Client)
}

// MasterAddr is the primary's address as the first Sentinel answering
// knows it.
func (s *Sentinel) MasterAddr() (string, error) {
	var lastErr error
	for _, n := range s.Sentinels {
		sc := sentinelClient(n)
		a, err := sc.GetMasterAddrByName(context.Background(), s.MasterName).Result()
		_ = sc.Close()
		if err == nil && len(a) == 2 {
			return a[0] + ":" + a[1], nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("no sentinel named a primary: %v", lastErr)
}

// WaitFailover waits until the Sentinels name the replica primary and it
// accepts writes, and returns how long that took.
func (s *Sentinel) WaitFailover(timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < timeout {
		if addr, err := s.MasterAddr(); err == nil && addr == s.Replica.Addr {
			info, err := s.Replica.Client.Info(context.Background(), "replication").Result()
			if err == nil && strings.Contains(info, "role:master") {
				return time.Since(start), nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("no failover within %s", timeout)
}

func (s *Sentinel) stop() {
	for _, n := range append(append([]*RedisServer{}, s.Sentinels...), s.Primary, s.Replica) {
		if n != nil {
			_ = n.Client.Close()
			_ = n.Kill()
		}
	}
}
