// Package store is the one storage pattern of every service: Redis keys that
// carry the service's hash tag, resources kept as protobuf bytes, and writes
// that are ONE atomic Lua step checking their preconditions (existence, etag,
// idempotency key) and writing the resource, its indexes and its event on the
// service's stream together. Errors leave this package as gRPC statuses.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxEvents bounds a stream that no consumer group reads (events.Trimmer
// trims it to about this many entries). At the expected volume (~10⁵
// participants a year) this is years of events; the stream is a delivery
// channel, not the archive. A stream with groups is trimmed only below
// what every group has acknowledged.
const MaxEvents = 1_000_000

// Keyspace builds every key of one service. The {service} hash tag puts all
// of a service's keys in one Redis Cluster slot, which is what lets one Lua
// script touch the resource, its indexes and its stream atomically.
type Keyspace string

// Key is "kn:{service}:part:part…".
func (k Keyspace) Key(parts ...string) string {
	return "kn:{" + string(k) + "}:" + strings.Join(parts, ":")
}

// Events is the service's event stream, "kn:{service}:events".
func (k Keyspace) Events() string { return k.Key("events") }

// Audit is the service's audit stream, "kn:{service}:audit", which the
// access service collects.
func (k Keyspace) Audit() string { return k.Key("audit") }

// Service is the service's short name, "councils".
func (k Keyspace) Service() string { return string(k) }

// Store is a service's handle on its Redis.
type Store struct {
	rdb redis.UniversalClient
	ks  Keyspace
	log *slog.Logger
}

// New returns the store of the service that owns ks.
func New(rdb redis.UniversalClient, ks Keyspace, log *slog.Logger) *Store {
	return &Store{rdb: rdb, ks: ks, log: log}
}

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("not found")

// ErrConflict is what a failed EtagIs check returns when given no error of
// its own: the resource changed since it was read.
var ErrConflict = errors.New("concurrent change")

// Get reads the resource at key into m: ErrNotFound if there is none.
func (s *Store) Get(ctx context.Context, key string, m proto.Message) error {
	b, err := s.rdb.HGet(ctx, key, fieldData).Bytes()
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	if err != nil {
		return s.Err(ctx, err)
	}
	return s.unmarshal(ctx, key, b, m)
}

// Load reads the resources at keys in one round trip, in order, skipping
// keys that no longer exist (deleted between reading an index and now).
func Load[T proto.Message](ctx context.Context, s *Store, keys []string, newT func() T) ([]T, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGet(ctx, k, fieldData)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.Err(ctx, err)
	}
	out := make([]T, 0, len(keys))
	for i, c := range cmds {
		b, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, s.Err(ctx, err)
		}
		m := newT()
		if err := s.unmarshal(ctx, keys[i], b, m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *Store) unmarshal(ctx context.Context, key string, b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		s.log.ErrorContext(ctx, "stored resource does not decode", "key", key, "error", err)
		return status.Error(codes.DataLoss, "a stored resource could not be read")
	}
	return nil
}

// Err maps a Redis or context error to a gRPC status; it is the one place
// that decides what a storage failure looks like to a caller.
func (s *Store) Err(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "storage did not answer in time")
	}
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err // already an API error
	}
	s.log.ErrorContext(ctx, "storage error", "error", err)
	return status.Error(codes.Unavailable, "storage unavailable, retry later")
}

// notReplicated is the answer to a write that Redis applied on its primary
// but that too few replicas confirmed in time (-redis-wait-replicas): the
// caller must not take it as durable. It may be lost if the primary fails
// now, or it may survive; a retry is safe (the write is idempotent by its
// request id or refused by its etag).
func (s *Store) notReplicated(ctx context.Context, err error) error {
	s.log.WarnContext(ctx, "write not confirmed by replicas", "error", err)
	return status.Error(codes.Unavailable, "storage could not confirm the write on a replica in time; it may not have been kept; retry later")
}

// NewEtag returns a fresh random etag.
func NewEtag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// setEtag sets the message's "etag" field, which every AIP resource has.
func setEtag(m proto.Message, etag string) {
	r := m.ProtoReflect()
	if fd := r.Descriptor().Fields().ByName("etag"); fd != nil && fd.Kind() == protoreflect.StringKind {
		r.Set(fd, protoreflect.ValueOfString(etag))
	}
}

// nameOf is the message's "name" field, the AIP resource name.
func nameOf(m proto.Message) string {
	r := m.ProtoReflect()
	if fd := r.Descriptor().Fields().ByName("name"); fd != nil && fd.Kind() == protoreflect.StringKind && !fd.IsList() {
		return r.Get(fd).String()
	}
	return ""
}

func etagOf(m proto.Message) string {
	r := m.ProtoReflect()
	if fd := r.Descriptor().Fields().ByName("etag"); fd != nil && fd.Kind() == protoreflect.StringKind {
		return r.Get(fd).String()
	}
	return ""
}
