// Package skills is the skills service: a versioned skills taxonomy with
// Swedish search, competence mappings of companies and sectors, industry
// validations of people, the gap between the two (and the competence need
// it amounts to), and competence certificates a person keeps, verifiable as
// Open Badges 3.0 credentials.
package skills

import (
	"context"
	"errors"
	"log/slog"
	"time"
	_ "time/tzdata" // dates are judged in Swedish time, on any host

	"buf.build/go/protovalidate"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
)

// Keyspace is the skills service's hash-tagged key prefix, kn:{skills}:….
const Keyspace = store.Keyspace("skills")

// Options configure the service.
type Options struct {
	Redis  redis.UniversalClient
	Logger *slog.Logger
	// Tokens signs page tokens; nil takes a random key.
	Tokens *listing.Tokens
	// Issuer signs certificates' credentials. Required.
	Issuer *Issuer
	// Councils is the councils service, which mapping subjects
	// councils/{council} are checked with. Nil: they are checked for their
	// form only (a deployment without the councils service).
	Councils *peer.Conn
	// Companies is the companies service, which mapping subjects
	// companies/{company} are checked with and a proposed need takes the
	// company's municipality from. Nil: checked for their form only, and
	// the municipality left out.
	Companies *peer.Conn
	// EnrolmentEvents is the Redis holding the enrolment service's event
	// stream, whose completed enrolments become certificates and whose
	// erased participants anonymise theirs (enrolment_events.go). Nil: this
	// service's own Redis.
	EnrolmentEvents redis.UniversalClient
	// Consumer names this process in its consumer groups (default
	// events.ConsumerName(): host and process id).
	Consumer string
	// Now is the clock (tests move it); defaults to time.Now.
	Now func() time.Time
}

// Service implements skillsv1.SkillsServiceServer.
type Service struct {
	skillsv1.UnimplementedSkillsServiceServer
	st        *store.Store
	rdb       redis.UniversalClient
	log       *slog.Logger
	tokens    *listing.Tokens
	issuer    *Issuer
	councils  *peer.Conn
	companies *peer.Conn
	now       func() time.Time
	validator protovalidate.Validator
	stockholm *time.Location
	// enrolmentEv is where the enrolment service's stream is read.
	enrolmentEv redis.UniversalClient
	consumer    string
}

// New builds the service.
func New(o Options) (*Service, error) {
	if o.Redis == nil {
		return nil, errors.New("skills: no Redis client")
	}
	if o.Issuer == nil {
		return nil, errors.New("skills: no issuer key for certificates")
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
	if o.EnrolmentEvents == nil {
		o.EnrolmentEvents = o.Redis
	}
	v, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		return nil, err
	}
	return &Service{
		st:          store.New(o.Redis, Keyspace, o.Logger),
		rdb:         o.Redis,
		log:         o.Logger,
		tokens:      o.Tokens,
		issuer:      o.Issuer,
		councils:    o.Councils,
		companies:   o.Companies,
		now:         o.Now,
		validator:   v,
		stockholm:   loc,
		enrolmentEv: o.EnrolmentEvents,
		consumer:    o.Consumer,
	}, nil
}

// Register adds the service to a gRPC server.
func (s *Service) Register(g *grpc.Server) {
	skillsv1.RegisterSkillsServiceServer(g, s)
}

// Background is what runs beside the gRPC server (events.Start runs it):
// the trimmer of the service's event and audit streams, and the consumer
// of the enrolment service's events (enrolment_events.go).
func (s *Service) Background() []func(context.Context) error {
	return []func(context.Context) error{
		events.NewTrimmer(s.rdb, s.log, Keyspace.Events(), Keyspace.Audit()).Run,
		s.consumeEnrolment,
	}
}

// Keys of the service. Every one is built here.
func skillKey(id string) string { return Keyspace.Key("skill", id) }

// revisionsKey is a skill's history: a sorted set scored by taxonomy
// version whose members are the version (10 digits) and the skill's bytes
// as they were from that version on.
func revisionsKey(id string) string { return Keyspace.Key("rev", id) }

// taxonomyKey holds the taxonomy's version in the field "etag", so that
// the write script's etag check pins it: every change of the taxonomy is
// one atomic step on condition that the version is still the one it read.
func taxonomyKey() string { return Keyspace.Key("taxonomy") }

// searchLabelKey and searchWordKey are the search index: sorted sets
// (score 0, read by lex range) of "<normalised label>\x01<skill id>" and
// "<normalised word>\x01<skill id>".
func searchLabelKey() string { return Keyspace.Key("search", "label") }
func searchWordKey() string  { return Keyspace.Key("search", "word") }

func mappingKey(id string) string    { return Keyspace.Key("mapping", id) }
func validationKey(id string) string { return Keyspace.Key("validation", id) }

// mappingValidationsKey holds the ids of the validations recorded against
// a mapping; while it is not empty the mapping cannot be deleted.
func mappingValidationsKey(mapping string) string { return Keyspace.Key("mapval", mapping) }
func certificateKey(id string) string             { return Keyspace.Key("certificate", id) }

// holderKey is a participant's record as a person certificates and
// validations name, a hash whose field "erased" is 1 once they were
// erased, after which none names them. It is what skills keeps of an
// erased participant: that the name participants/{participant}, which the
// enrolment service keeps too, was erased; nothing links it to a
// certificate or validation any more.
func holderKey(participantID string) string { return Keyspace.Key("holder", participantID) }

func idemKey(kind string, parts ...string) string {
	return Keyspace.Key(append([]string{"idem", kind}, parts...)...)
}
