// Package redisx connects to Redis, the system of record, through go-redis's
// UniversalClient, so one setting picks standalone, Sentinel or Cluster; and
// runs the embedded in-process store of the all-in-one binary.
package redisx

import (
	"context"
	"flag"
	"fmt"
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
}

// RegisterFlags defines -redis, -redis-master, -redis-username and
// -redis-password (KN_REDIS, KN_REDIS_MASTER, …) on fs.
func RegisterFlags(fs *flag.FlagSet, defaultAddr string) *Flags {
	return &Flags{
		Addrs: config.String(fs, "redis", defaultAddr,
			"Redis address host:port; several comma-separated for Cluster or Sentinel"),
		Master:   config.String(fs, "redis-master", "", "Sentinel master name (then -redis lists the sentinels)"),
		Username: config.String(fs, "redis-username", "", "Redis ACL user name"),
		Password: config.String(fs, "redis-password", "", "Redis password"),
	}
}

// Options turns the flags into go-redis options.
func (f *Flags) Options() *redis.UniversalOptions {
	return WithDefaults(&redis.UniversalOptions{
		Addrs:      config.List(*f.Addrs),
		MasterName: *f.Master,
		Username:   *f.Username,
		Password:   *f.Password,
	})
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
// and metrics, and pings it.
func Connect(ctx context.Context, o *redis.UniversalOptions) (redis.UniversalClient, error) {
	if len(o.Addrs) == 0 {
		return nil, fmt.Errorf("no Redis address")
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
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redis at %v: %w", o.Addrs, err)
	}
	return c, nil
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
