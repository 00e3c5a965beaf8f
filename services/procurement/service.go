// Package procurement is the procurement service: training providers and
// accredited test centres, permanent framework agreements with lots of
// ranked providers, and call-offs for approved competence needs, awarded by
// rank or by mini-competition within the agreement's validity and ceiling.
package procurement

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
)

// Keyspace is the procurement service's hash-tagged key prefix,
// kn:{procurement}:….
const Keyspace = store.Keyspace("procurement")

// CouncilsEvents is the councils service's stream, which procurement reads
// (as consumer group "procurement") to keep its queue of approved needs.
var CouncilsEvents = store.Keyspace("councils").Events()

// DefaultOCDSPrefix is the ocid prefix of the OCDS export when none is
// configured: OCDS's registered prefixes are "ocds-" and six characters;
// a publisher registers its own with the Open Contracting Partnership.
const DefaultOCDSPrefix = "ocds-kn0000"

// OCDSPrefixFlag defines -ocds-prefix (KN_OCDS_PREFIX).
func OCDSPrefixFlag(fs *flag.FlagSet) *string {
	return config.String(fs, "ocds-prefix", DefaultOCDSPrefix,
		"ocid prefix of the OCDS export (the publisher's registered prefix)")
}

// Options configure the service.
type Options struct {
	Redis  redis.UniversalClient
	Logger *slog.Logger
	// Tokens signs page tokens; nil takes a random key.
	Tokens *listing.Tokens
	// Councils is the councils service, asked whether a need is APPROVED
	// before a call-off is made for it.
	Councils *peer.Conn
	// Skills is the skills service, asked whether the skills that
	// accreditations, lots and call-offs name exist and are not deprecated.
	Skills *peer.Conn
	// CouncilsEvents is the Redis holding the councils service's event
	// stream; nil means Redis (both in one Redis).
	CouncilsEvents redis.UniversalClient
	// OCDSPrefix prefixes every ocid of the OCDS export (default
	// DefaultOCDSPrefix).
	OCDSPrefix string
	// SweepEvery is how often agreements past their valid_until are
	// recorded as EXPIRED (default a minute); reads show them EXPIRED at
	// once either way.
	SweepEvery time.Duration
	// Now is the clock (tests move it); defaults to time.Now.
	Now func() time.Time
}

// Service implements procurementv1.ProcurementServiceServer.
type Service struct {
	procurementv1.UnimplementedProcurementServiceServer
	st         *store.Store
	rdb        redis.UniversalClient
	councilsEv redis.UniversalClient
	log        *slog.Logger
	tokens     *listing.Tokens
	councils   *peer.Conn
	skills     *peer.Conn
	ocdsPrefix string
	sweepEvery time.Duration
	now        func() time.Time
	validator  protovalidate.Validator
}

// New builds the service.
func New(o Options) (*Service, error) {
	if o.Redis == nil {
		return nil, errors.New("procurement: no Redis client")
	}
	if o.Councils == nil {
		return nil, errors.New("procurement: no connection to the councils service")
	}
	if o.Skills == nil {
		return nil, errors.New("procurement: no connection to the skills service")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Tokens == nil {
		o.Tokens = listing.NewTokens("")
	}
	if o.CouncilsEvents == nil {
		o.CouncilsEvents = o.Redis
	}
	if o.OCDSPrefix == "" {
		o.OCDSPrefix = DefaultOCDSPrefix
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	v, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	return &Service{
		st:         store.New(o.Redis, Keyspace, o.Logger),
		rdb:        o.Redis,
		councilsEv: o.CouncilsEvents,
		log:        o.Logger,
		tokens:     o.Tokens,
		councils:   o.Councils,
		skills:     o.Skills,
		ocdsPrefix: o.OCDSPrefix,
		sweepEvery: o.SweepEvery,
		now:        o.Now,
		validator:  v,
	}, nil
}

// Register adds the service to a gRPC server.
func (s *Service) Register(g *grpc.Server) {
	procurementv1.RegisterProcurementServiceServer(g, s)
}

// Background is what runs beside the gRPC server (events.Start runs it):
// the trimmer of the service's event and audit streams, the consumer of the
// councils service's events that keeps the queue of approved needs, and
// the sweeper that records expired agreements.
func (s *Service) Background() []func(context.Context) error {
	queue := func(ctx context.Context) error {
		c, err := s.queueConsumer()
		if err != nil {
			return err
		}
		return c.Run(ctx)
	}
	return []func(context.Context) error{
		events.NewTrimmer(s.rdb, s.log, Keyspace.Events(), Keyspace.Audit()).Run,
		queue,
		s.sweep,
	}
}

// Keys of the service. Every one is built here.
func providerKey(id string) string { return Keyspace.Key("provider", id) }

// orgNumberKey marks a normalised organisation number as taken (field
// "provider": the provider's name); providers' numbers are unique.
func orgNumberKey(number string) string { return Keyspace.Key("orgno", number) }

// rankedKey holds the ids of the ACTIVE agreements that rank a provider;
// while it is not empty the provider cannot be deleted.
func rankedKey(provider string) string { return Keyspace.Key("ranked", provider) }

// agreementKey is an agreement's hash: its bytes, etag and index
// memberships, and fieldAwarded, the öre awarded under it.
func agreementKey(id string) string { return Keyspace.Key("agreement", id) }

// referenceKey marks an agreement reference number as taken (upper-cased:
// GR-2026-017 and gr-2026-017 are the same reference).
func referenceKey(ref string) string { return Keyspace.Key("ref", strings.ToUpper(ref)) }

func callOffKey(id string) string { return Keyspace.Key("calloff", id) }

// bidKey is a provider's bid on a call-off: one per provider.
func bidKey(callOff, provider string) string { return Keyspace.Key("bid", callOff, provider) }

// queuedKey holds an approved need waiting for a call-off; dequeuedKey
// marks a need that left the queue for good (awarded, rejected, closed), so
// a late or replayed approval cannot put it back.
func queuedKey(council, need string) string   { return Keyspace.Key("queued", council, need) }
func dequeuedKey(council, need string) string { return Keyspace.Key("dequeued", council, need) }

func idemKey(kind string, parts ...string) string {
	return Keyspace.Key(append([]string{"idem", kind}, parts...)...)
}

// fieldAwarded is the hash field of an agreement holding the öre awarded
// under it: the running total the award's atomic step checks against the
// ceiling (store.Tx.AtMost) and raises (store.Tx.HIncrBy).
const fieldAwarded = "awarded"
