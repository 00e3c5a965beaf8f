// Package access is the access service: API keys (only a hash of each
// secret is kept) with the role and bound resource of the principal they
// authenticate, the principal behind a call, and the audit log collected
// from every service's audit stream.
package access

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
)

// Keyspace is the access service's hash-tagged key prefix, kn:{access}:….
const Keyspace = store.Keyspace("access")

// LastUsedInterval is how often, at most, a key's last_used_time is
// written: it is approximate by design, so authentication stays a read.
const LastUsedInterval = time.Minute

// Options configure the service.
type Options struct {
	Redis  redis.UniversalClient
	Logger *slog.Logger
	// Tokens signs page tokens; nil takes a random key.
	Tokens *listing.Tokens
	// Now is the clock (tests move it); defaults to time.Now.
	Now func() time.Time
	// AuditSources are the services whose audit streams (kn:{svc}:audit)
	// the service collects, each with the Redis the stream lives in.
	AuditSources map[string]redis.UniversalClient
}

// Service implements accessv1.AccessServiceServer.
type Service struct {
	accessv1.UnimplementedAccessServiceServer
	st      *store.Store
	rdb     redis.UniversalClient
	log     *slog.Logger
	tokens  *listing.Tokens
	now     func() time.Time
	sources map[string]redis.UniversalClient

	usedMu sync.Mutex
	used   map[string]time.Time // key id → when its last_used_time was last written
}

// New builds the service.
func New(o Options) (*Service, error) {
	if o.Redis == nil {
		return nil, errors.New("access: no Redis client")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Tokens == nil {
		o.Tokens = listing.NewTokens("")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{
		st:      store.New(o.Redis, Keyspace, o.Logger),
		rdb:     o.Redis,
		log:     o.Logger,
		tokens:  o.Tokens,
		now:     o.Now,
		sources: o.AuditSources,
		used:    map[string]time.Time{},
	}, nil
}

// AuditGroup is the consumer group the access service reads every audit
// stream as.
const AuditGroup = "access"

// Background is what runs beside the gRPC server: the trimmer of the
// service's own streams, and one consumer per audit source, which stores
// every record of that service's audit stream (CollectAudit). Records wait
// in the streams while the access service is down, and the trimmers keep
// them until the group has acknowledged them.
func (s *Service) Background() ([]func(context.Context) error, error) {
	runs := []func(context.Context) error{events.NewTrimmer(s.rdb, s.log, Keyspace.Events(), Keyspace.Audit()).Run}
	for svc, src := range s.sources {
		stream := store.Keyspace(svc).Audit()
		c, err := events.NewConsumer(events.Config{Source: src, Stream: stream, Group: AuditGroup, Raw: true, Logger: s.log},
			func(ctx context.Context, d *events.Delivery) error {
				return s.CollectAudit(ctx, d.Stream, redis.XMessage{ID: d.ID, Values: d.Values})
			})
		if err != nil {
			return nil, err
		}
		runs = append(runs, c.Run)
	}
	return runs, nil
}

// Register adds the service to a gRPC server.
func (s *Service) Register(g *grpc.Server) {
	accessv1.RegisterAccessServiceServer(g, s)
}

// Keys of the service. Every one is built here.
//
// An API key's hash holds, beside the resource ("pb", "etag"), the SHA-256
// of its secret ("sha256") and when it was last used ("used", Unix
// seconds), which are never part of the resource.
func keyKey(id string) string    { return Keyspace.Key("key", id) }
func recordKey(id string) string { return Keyspace.Key("record", id) }

const (
	fieldSecretHash = "sha256"
	fieldUsed       = "used"
)
