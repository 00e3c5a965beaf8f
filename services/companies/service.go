// Package companies is the companies service: companies with Swedish
// organisation numbers, their notices of redundancy, furloughs and
// lay-offs (the demand signal councils read), and competence coaching in
// the four structured conversations held before training is bought.
package companies

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"buf.build/go/protovalidate"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
)

// Keyspace is the companies service's hash-tagged key prefix, kn:{companies}:….
const Keyspace = store.Keyspace("companies")

// Options configure the service.
type Options struct {
	Redis  redis.UniversalClient
	Logger *slog.Logger
	// Tokens signs page tokens; nil takes a random key.
	Tokens *listing.Tokens
	// Councils is the councils service, which says whether a council
	// exists (a company belongs to one).
	Councils *peer.Conn
	// Now is the clock (tests move it); defaults to time.Now.
	Now func() time.Time
}

// Service implements companiesv1.CompaniesServiceServer.
type Service struct {
	companiesv1.UnimplementedCompaniesServiceServer
	st        *store.Store
	rdb       redis.UniversalClient
	log       *slog.Logger
	tokens    *listing.Tokens
	councils  *peer.Conn
	now       func() time.Time
	validator protovalidate.Validator
}

// New builds the service.
func New(o Options) (*Service, error) {
	if o.Redis == nil {
		return nil, errors.New("companies: no Redis client")
	}
	if o.Councils == nil {
		return nil, errors.New("companies: no connection to the councils service")
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
	v, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	return &Service{st: store.New(o.Redis, Keyspace, o.Logger), rdb: o.Redis, log: o.Logger, tokens: o.Tokens,
		councils: o.Councils, now: o.Now, validator: v}, nil
}

// Register adds the service to a gRPC server.
func (s *Service) Register(g *grpc.Server) { companiesv1.RegisterCompaniesServiceServer(g, s) }

// Background is what runs beside the gRPC server: the trimmer of the
// service's event and audit streams.
func (s *Service) Background() []func(context.Context) error {
	return []func(context.Context) error{events.NewTrimmer(s.rdb, s.log, Keyspace.Events(), Keyspace.Audit()).Run}
}

func (s *Service) councilsClient() councilsv1.CouncilsServiceClient {
	return councilsv1.NewCouncilsServiceClient(s.councils)
}

// Keys of the service. Every one is built here.
func companyKey(id string) string          { return Keyspace.Key("company", id) }
func noticeKey(company, id string) string  { return Keyspace.Key("notice", company, id) }
func sessionKey(company, id string) string { return Keyspace.Key("coaching", company, id) }

// orgNumberKey maps a normalised organisation number to its company (hash
// field "company"): what makes numbers unique.
func orgNumberKey(number string) string { return Keyspace.Key("orgnr", number) }

// deletedKey exists once the company was deleted: its notices and coaching
// stay on record under its name, so the id is not given out again.
func deletedKey(id string) string { return Keyspace.Key("deleted", id) }

// heldKey exists once conversation n of a company has been held (hash
// field "session": which session held it).
func heldKey(company string, n int32) string {
	return Keyspace.Key("held", company, strconv.Itoa(int(n)))
}

// plannedKey holds the ids of a company's PLANNED sessions: while it is not
// empty the company cannot be deleted.
func plannedKey(company string) string { return Keyspace.Key("planned", company) }

func idemKey(kind string, parts ...string) string {
	return Keyspace.Key(append([]string{"idem", kind}, parts...)...)
}
