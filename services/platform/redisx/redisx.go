// Package redisx connects to Redis, the system of record, through go-redis's
// UniversalClient, so one setting picks standalone, Sentinel or Cluster; and
// runs the embedded in-process store of the all-in-one binary.
package redisx

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
)

// Flags are the Redis settings of a binary.
type Flags struct {
	Addrs    *string
	Master   *string
	Username *string
	Password *string
	// Wait, WaitReplicas and WaitReplicasTimeout may be nil (a Flags built
	// by hand): no waiting then.
	Wait                *time.Duration
	WaitReplicas        *int
	WaitReplicasTimeout *time.Duration
}

// DefaultWait is how long a binary retries its first connection to Redis
// (-redis-wait): long enough for a Redis started at the same moment (a pod
// beside it, a StatefulSet restarting) to come up, short enough that a
// wrong address is reported within seconds.
const DefaultWait = 10 * time.Second

// DefaultWaitReplicasTimeout bounds each WAIT (-redis-wait-replicas-timeout).
const DefaultWaitReplicasTimeout = time.Second

// RegisterFlags defines -redis, -redis-master, -redis-username,
// -redis-password, -redis-wait, -redis-wait-replicas and
// -redis-wait-replicas-timeout (KN_REDIS, KN_REDIS_MASTER, …) on fs.
func RegisterFlags(fs *flag.FlagSet, defaultAddr string) *Flags {
	return &Flags{
		Addrs: config.String(fs, "redis", defaultAddr,
			"Redis address host:port; several comma-separated for Cluster or Sentinel"),
		Master:   config.String(fs, "redis-master", "", "Sentinel master name (then -redis lists the sentinels)"),
		Username: config.String(fs, "redis-username", "", "Redis ACL user name"),
		Password: config.String(fs, "redis-password", "", "Redis password"),
		Wait: config.Duration(fs, "redis-wait", DefaultWait,
			"how long to retry the first connection to Redis, with backoff (0: try once)"),
		WaitReplicas: config.Int(fs, "redis-wait-replicas", 0,
			"replicas that must confirm every write (Redis WAIT) before it is acknowledged; 0 does not wait"),
		WaitReplicasTimeout: config.Duration(fs, "redis-wait-replicas-timeout", DefaultWaitReplicasTimeout,
			"how long a write waits for -redis-wait-replicas confirmations before it is answered UNAVAILABLE"),
	}
}

// Options turns the flags into go-redis options. Connect(ctx, f.Options())
// also honours -redis-wait and -redis-wait-replicas: the options remember
// them (go-redis's struct has no field for them), so every binary that
// connects this way gets them without further wiring.
func (f *Flags) Options() *redis.UniversalOptions {
	o := WithDefaults(&redis.UniversalOptions{
		Addrs:      config.List(*f.Addrs),
		MasterName: *f.Master,
		Username:   *f.Username,
		Password:   *f.Password,
	})
	var c Settings
	if f.Wait != nil {
		c.Wait = *f.Wait
	}
	if f.WaitReplicas != nil {
		c.WaitReplicas = *f.WaitReplicas
	}
	if f.WaitReplicasTimeout != nil {
		c.WaitReplicasTimeout = *f.WaitReplicasTimeout
	}
	if c != (Settings{}) {
		settingsByOptions.Store(o, c)
	}
	return o
}

// Settings are what Connect does beyond go-redis's options.
type Settings struct {
	// Wait is how long Connect retries a first connection that fails
	// (0: one try).
	Wait time.Duration
	// WaitReplicas is how many replicas must confirm a write (WAIT) before
	// the store acknowledges it; WaitReplicasTimeout bounds the wait.
	WaitReplicas        int
	WaitReplicasTimeout time.Duration
}

var (
	settingsByOptions sync.Map // *redis.UniversalOptions → Settings (Flags.Options)
	settingsByClient  sync.Map // redis.UniversalClient → Settings (Connect)
)

// SettingsOf is what Connect will do with o beyond go-redis's options.
func SettingsOf(o *redis.UniversalOptions) Settings {
	v, _ := settingsByOptions.Load(o)
	s, _ := v.(Settings)
	return s
}

// WithSettings attaches s to o for Connect, as Flags.Options does; returns o.
func WithSettings(o *redis.UniversalOptions, s Settings) *redis.UniversalOptions {
	settingsByOptions.Store(o, s)
	return o
}

// Replicas is how many replica confirmations (and how long to wait for
// them) writes through c need: -redis-wait-replicas of the options c was
// connected with, 0 for a client not made by Connect.
func Replicas(c redis.UniversalClient) (int, time.Duration) {
	v, ok := settingsByClient.Load(c)
	if !ok {
		return 0, 0
	}
	s := v.(Settings)
	if s.WaitReplicasTimeout <= 0 {
		s.WaitReplicasTimeout = DefaultWaitReplicasTimeout
	}
	return s.WaitReplicas, s.WaitReplicasTimeout
}

// Timeouts and retries of every client, set explicitly because the write
// path depends on them.
//
// go-redis resends a command on a new connection when a reply does not come
// within ReadTimeout, up to MaxRetries times. For reads that is harmless. For
// a write script it was not: a Redis that hung for a few seconds ran the
// first copy and the resent one when it woke, so a create answered
// ALREADY_EXISTS for its own id and an approval answered that the need was
// already APPROVED. Every write script now carries an operation id that it
// records when it applies the write (store.Tx), so a resent copy answers
// "ok" without running again, and a window (store.WriteWindow, shorter than
// ReadTimeout × (MaxRetries+1)) after which a late copy is refused without
// effect, so a write the caller was told had failed does not happen later.
// With both, keeping go-redis's resends is safe and rides out short hangs.
const (
	ReadTimeout  = 3 * time.Second
	WriteTimeout = 3 * time.Second
	MaxRetries   = 3
	DialTimeout  = 5 * time.Second
)

// WithDefaults fills o's timeouts and retries with the values above where
// o leaves them zero, and returns o.
func WithDefaults(o *redis.UniversalOptions) *redis.UniversalOptions {
	if o.ReadTimeout == 0 {
		o.ReadTimeout = ReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = WriteTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = MaxRetries
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DialTimeout
	}
	return o
}

// Connect opens a client (standalone for one address, Cluster for several,
// Sentinel with a master name), instruments it with OpenTelemetry tracing
// and metrics, and pings it. With a Wait setting (-redis-wait, see
// Flags.Options and WithSettings) a failing ping is retried with backoff
// for that long, one log line per attempt, so a process started before its
// Redis does not crash-loop; ctx ending stops the retries.
func Connect(ctx context.Context, o *redis.UniversalOptions) (redis.UniversalClient, error) {
	if len(o.Addrs) == 0 {
		return nil, fmt.Errorf("no Redis address")
	}
	var s Settings
	if v, ok := settingsByOptions.Load(o); ok {
		s = v.(Settings)
	}
	c := redis.NewUniversalClient(WithDefaults(o))
	if err := redisotel.InstrumentTracing(c); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := redisotel.InstrumentMetrics(c); err != nil {
		_ = c.Close()
		return nil, err
	}
	if err := ping(ctx, c, o.Addrs, s.Wait); err != nil {
		_ = c.Close()
		return nil, err
	}
	if s.WaitReplicas < 0 {
		_ = c.Close()
		return nil, fmt.Errorf("-redis-wait-replicas must not be negative")
	}
	if s.WaitReplicas > 0 {
		// Kept for the client's life: a process makes a handful of them.
		settingsByClient.Store(c, s)
	}
	return c, nil
}

// ping pings c until it answers or wait has passed, backing off from 250 ms
// to 5 s between attempts.
func ping(ctx context.Context, c redis.UniversalClient, addrs []string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.Ping(pctx).Err()
		cancel()
		if err == nil {
			if attempt > 1 {
				slog.InfoContext(ctx, "connected to Redis", "addrs", addrs, "attempts", attempt)
			}
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return fmt.Errorf("redis at %v: %w", addrs, err)
		}
		sleep := min(backoff, left)
		slog.WarnContext(ctx, "Redis not reachable yet; retrying", "addrs", addrs, "attempt", attempt,
			"error", err.Error(), "retry_in", sleep.Round(time.Millisecond), "gives_up_in", left.Round(time.Second))
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			return fmt.Errorf("redis at %v: %w", addrs, errors.Join(err, ctx.Err()))
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// UseLogger sends go-redis's own log lines (pool and Sentinel messages,
// otherwise printed raw to stderr) to log, so they share the process's
// format and level.
func UseLogger(log *slog.Logger) { redis.SetLogger(redisLogger{log}) }

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// Embedded is an in-process Redis-protocol server (miniredis) on a loopback
// port. It keeps everything in memory: nothing survives the process.
type Embedded struct{ m *miniredis.Miniredis }

// StartEmbedded starts the embedded server.
func StartEmbedded() (*Embedded, error) {
	m, err := miniredis.Run()
	if err != nil {
		return nil, err
	}
	return &Embedded{m: m}, nil
}

// Addr is host:port of the embedded server.
func (e *Embedded) Addr() string { return e.m.Addr() }

// Close stops it and drops its data.
func (e *Embedded) Close() { e.m.Close() }

// ErrNotReplicated is what RunReplicated reports when a script ran on the
// primary but fewer replicas than asked confirmed it within the timeout.
var ErrNotReplicated = errors.New("not confirmed by enough replicas")

// RunReplicated runs script like script.Run and, when writes through c need
// replica confirmations (-redis-wait-replicas, see Replicas), sends WAIT on
// the same connection right after it: WAIT counts the replicas that have
// everything this connection wrote, so it must share the script's
// connection (a pipeline on the node that owns keys[0]). The script's own
// result is in the returned command either way; the error is
// ErrNotReplicated (wrapped) when too few replicas confirmed, and is only
// meaningful when the script wrote something.
func RunReplicated(ctx context.Context, c redis.UniversalClient, script *redis.Script, keys []string, args ...any) (*redis.Cmd, error) {
	n, timeout := Replicas(c)
	if n == 0 {
		return script.Run(ctx, c, keys, args...), nil
	}
	var node redis.Cmdable = c
	if cc, ok := c.(*redis.ClusterClient); ok && len(keys) > 0 {
		m, err := cc.MasterForKey(ctx, keys[0])
		if err != nil {
			cmd := redis.NewCmd(ctx)
			cmd.SetErr(err)
			return cmd, nil
		}
		node = m
	}
	run := func(eval func(p redis.Pipeliner) *redis.Cmd) (*redis.Cmd, *redis.Cmd) {
		var cmd, w *redis.Cmd
		_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			cmd = eval(p)
			w = p.Do(ctx, "wait", n, timeout.Milliseconds())
			return nil
		})
		return cmd, w
	}
	cmd, w := run(func(p redis.Pipeliner) *redis.Cmd { return script.EvalSha(ctx, p, keys, args...) })
	if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// EVAL also puts the script in the cache for the next EVALSHA.
		cmd, w = run(func(p redis.Pipeliner) *redis.Cmd { return script.Eval(ctx, p, keys, args...) })
	}
	if cmd.Err() != nil {
		return cmd, nil
	}
	if err := w.Err(); err != nil {
		return cmd, fmt.Errorf("%w: WAIT: %v", ErrNotReplicated, err)
	}
	if got, err := w.Int64(); err != nil || got < int64(n) {
		return cmd, fmt.Errorf("%w: %d of %d replicas within %s", ErrNotReplicated, got, n, timeout)
	}
	return cmd, nil
}
