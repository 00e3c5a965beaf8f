// Package councils is the councils service: sector competence councils and
// the competence needs they submit, with the need lifecycle
// DRAFT → SUBMITTED → APPROVED / REJECTED → IN_PROCUREMENT → FULFILLED / CLOSED.
package councils

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"time"
	_ "time/tzdata" // needed-by dates are judged in Swedish time, on any host

	"buf.build/go/protovalidate"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/sweden"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
)

// Keyspace is the councils service's hash-tagged key prefix, kn:{councils}:….
const Keyspace = store.Keyspace("councils")

// RegionFlag defines -default-municipalities (KN_DEFAULT_MUNICIPALITIES):
// the hub's region, given to councils created without municipalities.
// Split the value with config.List.
func RegionFlag(fs *flag.FlagSet) *string {
	return config.String(fs, "default-municipalities", "",
		"comma-separated SCB codes a council gets when created without any (default: Göteborgsregionen's 13)")
}

// Options configure the service.
type Options struct {
	Redis  redis.UniversalClient
	Logger *slog.Logger
	// Tokens signs page tokens; nil takes a random key.
	Tokens *listing.Tokens
	// DefaultMunicipalities are given to a council created without any: the
	// hub's region. Defaults to Göteborgsregionen.
	DefaultMunicipalities []string
	// Now is the clock (tests move it); defaults to time.Now.
	Now func() time.Time
	// CompaniesEvents is the Redis holding the companies service's event
	// stream, whose notices make the demand signal; nil is Redis, where
	// the companies service's stream lives when both share one.
	CompaniesEvents redis.UniversalClient

	// ProcurementEvents is the Redis holding the procurement service's
	// event stream (an awarded call-off moves its need into procurement);
	// nil means Redis.
	ProcurementEvents redis.UniversalClient
}

// Service implements councilsv1.CouncilsServiceServer.
type Service struct {
	councilsv1.UnimplementedCouncilsServiceServer
	st        *store.Store
	rdb       redis.UniversalClient
	log       *slog.Logger
	tokens    *listing.Tokens
	region    []string
	now       func() time.Time
	validator protovalidate.Validator
	stockholm *time.Location
	demand    *events.Consumer

	procurementEv redis.UniversalClient // see Options.ProcurementEvents
}

// New builds the service.
func New(o Options) (*Service, error) {
	if o.Redis == nil {
		return nil, errors.New("councils: no Redis client")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Tokens == nil {
		o.Tokens = listing.NewTokens("")
	}
	if len(o.DefaultMunicipalities) == 0 {
		o.DefaultMunicipalities = sweden.GoteborgsRegionen
	}
	for _, c := range o.DefaultMunicipalities {
		if !sweden.IsMunicipality(c) {
			return nil, errors.New("councils: default municipality " + c + " is not an SCB municipality code")
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	v, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		return nil, err
	}
	s := &Service{
		st:        store.New(o.Redis, Keyspace, o.Logger),
		rdb:       o.Redis,
		log:       o.Logger,
		tokens:    o.Tokens,
		region:    o.DefaultMunicipalities,
		now:       o.Now,
		validator: v,
		stockholm: loc,
	}
	if o.CompaniesEvents == nil {
		o.CompaniesEvents = o.Redis
	}
	if s.demand, err = s.demandConsumer(o.CompaniesEvents); err != nil {
		return nil, err
	}
	s.procurementEv = o.ProcurementEvents
	if s.procurementEv == nil {
		s.procurementEv = o.Redis
	}
	return s, nil
}

// Register adds the service to a gRPC server.
func (s *Service) Register(g *grpc.Server) {
	councilsv1.RegisterCouncilsServiceServer(g, s)
}

// Background is what runs beside the gRPC server (events.Start runs it):
// the trimmer of the service's event and audit streams, the consumer of
// the companies service's notices (the demand signal), and the consumer of
// procurement's awards (procurement_events.go).
func (s *Service) Background() []func(context.Context) error {
	return []func(context.Context) error{
		events.NewTrimmer(s.rdb, s.log, Keyspace.Events(), Keyspace.Audit()).Run,
		s.demand.Run,
		s.consumeProcurement, // procurement_events.go
		// The domain metric kn.councils.needs{state}, read from the list index.
		needIndex.CountGauge("kn.councils.needs", "Competence needs by state", "state", needStates(), s.rdb, Keyspace),
	}
}

func needStates() []string {
	var out []string
	for n, name := range councilsv1.CompetenceNeed_State_name {
		if n != int32(councilsv1.CompetenceNeed_STATE_UNSPECIFIED) {
			out = append(out, name)
		}
	}
	return out
}

// Keys of the service. Every one is built here.
func councilKey(id string) string       { return Keyspace.Key("council", id) }
func needKey(council, id string) string { return Keyspace.Key("need", council, id) }

// openNeedsKey holds the ids of a council's needs that are neither CLOSED
// nor REJECTED; while it is not empty the council cannot be deleted.
func openNeedsKey(council string) string { return Keyspace.Key("open", council) }
func idemKey(kind string, parts ...string) string {
	return Keyspace.Key(append([]string{"idem", kind}, parts...)...)
}
