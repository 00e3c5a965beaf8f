package redisx_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func captureDefault(t *testing.T) *syncBuffer {
	buf := &syncBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(buf, nil)))
	redisx.UseLogger(slog.New(slog.NewTextHandler(discard{}, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return buf
}

// A process started before its Redis connects once Redis is up, logging
// each attempt, instead of failing at once.
func TestConnectRetriesUntilRedisIsUp(t *testing.T) {
	logs := captureDefault(t)
	srv := testkit.StartRedis(t)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	restarted := make(chan error, 1)
	go func() {
		time.Sleep(3 * time.Second)
		restarted <- srv.Restart()
	}()
	o := redisx.WithSettings(&redis.UniversalOptions{Addrs: []string{srv.Addr}}, redisx.Settings{Wait: 20 * time.Second})
	c, err := redisx.Connect(context.Background(), o)
	if err != nil {
		t.Fatalf("Connect gave up: %v", err)
	}
	defer c.Close()
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "Redis not reachable yet; retrying"); n < 1 {
		t.Fatalf("%d retry lines, want one per failed attempt:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), `"msg":"connected to Redis"`) {
		t.Fatalf("no line saying it connected:\n%s", logs)
	}
}

// Without a Redis, Connect gives up after the wait with an error naming
// the address; without a wait it tries once.
func TestConnectGivesUpAfterTheWait(t *testing.T) {
	captureDefault(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	for _, wait := range []time.Duration{0, 1200 * time.Millisecond} {
		start := time.Now()
		o := redisx.WithSettings(&redis.UniversalOptions{Addrs: []string{addr}}, redisx.Settings{Wait: wait})
		_, err := redisx.Connect(context.Background(), o)
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), addr) {
			t.Fatalf("wait %s: err %v, want one naming %s", wait, err, addr)
		}
		if took < wait {
			t.Fatalf("wait %s: gave up after %s", wait, took)
		}
	}
}

// A stop (the context ending) ends the retries at once.
func TestConnectStopsRetryingWhenTheContextEnds(t *testing.T) {
	captureDefault(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	o := redisx.WithSettings(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}}, redisx.Settings{Wait: time.Minute})
	_, err := redisx.Connect(ctx, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

// go-redis's own log lines go through the process logger (JSON here),
// not raw to stderr.
func TestGoRedisLogsThroughSlog(t *testing.T) {
	buf := &syncBuffer{}
	redisx.UseLogger(slog.New(slog.NewJSONHandler(buf, nil)))
	t.Cleanup(func() { redisx.UseLogger(slog.New(slog.NewTextHandler(discard{}, nil))) })
	rdb := testkit.Redis(t)
	// go-redis logs that it rounds a sub-millisecond expiry up.
	if err := rdb.Set(context.Background(), "kn:{test}:x", "1", 500*time.Microsecond).Err(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `"component":"go-redis"`) || !strings.Contains(out, "truncating to 1ms") {
		t.Fatalf("go-redis line not in the slog output: %q", out)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

var script = redis.NewScript(`redis.call('SET', KEYS[1], ARGV[1]); return 'ok'`)

// With -redis-wait-replicas a write is acknowledged once a replica has it,
// and reported ErrNotReplicated when the replica cannot confirm in time
// (it still ran on the primary: WAIT does not roll back).
func TestRunReplicatedWaitsForTheReplica(t *testing.T) {
	s := testkit.StartSentinel(t)
	ctx := context.Background()
	o := redisx.WithSettings(s.Options(), redisx.Settings{WaitReplicas: 1, WaitReplicasTimeout: 300 * time.Millisecond})
	c, err := redisx.Connect(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, _ := redisx.Replicas(c); n != 1 {
		t.Fatalf("Replicas = %d, want 1", n)
	}
	cmd, err := redisx.RunReplicated(ctx, c, script, []string{"kn:{test}:a"}, "1")
	if err != nil || cmd.Val() != "ok" {
		t.Fatalf("healthy replica: %v, %v", cmd.Val(), err)
	}
	// The replica has it the moment the write is acknowledged.
	if v, _ := s.Replica.Client.Get(ctx, "kn:{test}:a").Result(); v != "1" {
		t.Fatalf("replica holds %q right after the acknowledgement", v)
	}
	if err := s.Replica.Pause(); err != nil {
		t.Fatal(err)
	}
	defer s.Replica.Resume()
	cmd, err = redisx.RunReplicated(ctx, c, script, []string{"kn:{test}:b"}, "2")
	if !errors.Is(err, redisx.ErrNotReplicated) || cmd.Val() != "ok" {
		t.Fatalf("replica paused: %v, %v; want the script's ok and ErrNotReplicated", cmd.Val(), err)
	}
	// A client without the setting does not wait.
	plain, err := redisx.Connect(ctx, s.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := redisx.RunReplicated(ctx, plain, script, []string{"kn:{test}:c"}, "3"); err != nil {
		t.Fatalf("without -redis-wait-replicas: %v", err)
	}
}
