// Package enrolment is the enrolment service: funded projects with their
// targets, course offerings bought through awarded call-offs, the
// participants who take them, with their personal data protected, and
// enrolment that never overbooks.
//
// # Personal data
//
// A participant's hash holds the pseudonymous fields the reports count
// (gender, municipality, labour-market status, ISCED level, employer) as
// the resource's protobuf bytes, and, apart from them, the personal
// identity number and names as one AES-256-GCM ciphertext (package pii;
// the key id is in the ciphertext so keys can rotate). The number is found
// through a keyed HMAC blind index, whose key is written in the same
// atomic step as the participant, so registering a person twice is
// refused however the two registrations race. Responses show the number
// masked and the family name as its initial unless staff ask for the FULL
// view (every read of a participant is in the audit log); events carry
// only the pseudonymous fields; idempotency records fingerprint requests
// with a keyed hash.
//
// # Seats and the waitlist
//
// Enrolment takes a seat or a waitlist place in ONE atomic step. The
// platform's write plan (store.Tx) was extended for it rather than given a
// script of its own here, so the step keeps everything every write has
// (operation id, write window, idempotency, audit record, outbox event):
// store.Tx.Branch picks, inside the script, between the seat alternative
// (the count of enrolled participants fits the capacity: take the seat,
// count it) and the waitlist alternative (join the offering's waitlist at
// the next number of a sequence kept in the same step, store.Tx.ZAddSeq),
// each with its own stored enrolment, index entries and event. Waitlist
// positions are ranks in that sorted set, so they close up by themselves
// when someone ahead leaves. A withdrawal that frees a seat promotes the
// head of the waitlist in the same step, on condition (store.Tx.FirstIs)
// that it is still the head; when it is not (another withdrawal promoted
// it), the withdrawal reads again and retries. (The same check is what a
// ceiling needs: the platform's AtMost, whose test Branch shares.)
//
// An enrolment costs two Redis round trips: one pipelined read of the
// offering, the participant and its booking (the project comes from a
// cache whose every use the atomic step validates by etag), and the step.
//
// # Attendance, completion, outcomes, erasure (part 2)
//
// Attendance is kept in the enrolment's own hash, a field per session
// (attendance_rpc.go), so it is written in the same step as anything else
// about the enrolment, and a completion or withdrawal racing with it is
// decided by the enrolment's etag. Outcomes are a hash per participant,
// a field per project and timing, with a version beside it that makes the
// rule between exit and six-month outcomes hold under concurrent writes
// (outcome_rpc.go). Erasure rewrites the participant's hash with the
// pseudonymous fields only, so the sealed data goes with it, and removes
// the blind-index key in the same step (erase_rpc.go).
//
// # For the reports (part 2)
//
// Each enrolment keeps, beside it and written in the same step, a snapshot
// of the participant's statistical fields at enrolment (gender, age band,
// labour-market status, ISCED level, municipality, employer's council;
// EnrolmentSnapshot), and is indexed by project and participant, so a
// project's report can be computed from the enrolments alone, unaffected
// by later changes to (or the erasure of) the participant.
package enrolment

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
	_ "time/tzdata" // dates are Swedish dates, on any host

	"buf.build/go/protovalidate"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Keyspace is the enrolment service's hash-tagged key prefix,
// kn:{enrolment}:….
const Keyspace = store.Keyspace("enrolment")

// Options configure the service.
type Options struct {
	Redis  redis.UniversalClient
	Logger *slog.Logger
	// Tokens signs page tokens; nil takes a random key.
	Tokens *listing.Tokens
	// Keys protect participants' personal data (required).
	Keys *pii.Keys
	// CallOffs answers for the call-offs offerings are made from (the
	// procurement service); nil refuses to create offerings (UNAVAILABLE).
	CallOffs CallOffs
	// Companies answers for participants' employers (the companies
	// service); nil refuses participants with an employer (UNAVAILABLE).
	Companies Companies
	// Now is the clock (tests move it); defaults to time.Now.
	Now func() time.Time
}

// Service implements enrolmentv1.EnrolmentServiceServer.
type Service struct {
	enrolmentv1.UnimplementedEnrolmentServiceServer
	st        *store.Store
	rdb       redis.UniversalClient
	log       *slog.Logger
	tokens    *listing.Tokens
	keys      *pii.Keys
	callOffs  CallOffs
	companies Companies
	now       func() time.Time
	validator protovalidate.Validator
	stockholm *time.Location

	// projects caches projects for enrolment's eligibility checks; every
	// use is validated by the project's etag inside the atomic step.
	projectsMu sync.RWMutex
	projects   map[string]*enrolmentv1.Project
}

// New builds the service.
func New(o Options) (*Service, error) {
	if o.Redis == nil {
		return nil, errors.New("enrolment: no Redis client")
	}
	if o.Keys == nil {
		return nil, errors.New("enrolment: no keys for participants' personal data")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Tokens == nil {
		o.Tokens = listing.NewTokens("")
	}
	if o.CallOffs == nil {
		o.CallOffs = Unavailable("procurement")
	}
	if o.Companies == nil {
		o.Companies = Unavailable("companies")
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
	return &Service{
		st:        store.New(o.Redis, Keyspace, o.Logger),
		rdb:       o.Redis,
		log:       o.Logger,
		tokens:    o.Tokens,
		keys:      o.Keys,
		callOffs:  o.CallOffs,
		companies: o.Companies,
		now:       o.Now,
		validator: v,
		stockholm: loc,
		projects:  map[string]*enrolmentv1.Project{},
	}, nil
}

// Register adds the service to a gRPC server.
func (s *Service) Register(g *grpc.Server) {
	enrolmentv1.RegisterEnrolmentServiceServer(g, s)
}

// Background is what runs beside the gRPC server (events.Start runs it):
// the trimmer of the service's event and audit streams.
func (s *Service) Background() []func(context.Context) error {
	return []func(context.Context) error{events.NewTrimmer(s.rdb, s.log, Keyspace.Events(), Keyspace.Audit()).Run}
}

// Keys of the service. Every one is built here.
func projectKey(id string) string { return Keyspace.Key("project", id) }

// projectRefKey holds the id of the project with a reference number: it is
// what keeps reference numbers unique.
func projectRefKey(ref string) string { return Keyspace.Key("projectref", ref) }

// offeringKey is the offering's hash: its bytes and, beside them, the
// counters the enrolment step keeps (fieldEnrolled, fieldWaitSeq).
func offeringKey(id string) string { return Keyspace.Key("offering", id) }

// waitlistKey orders an offering's waitlisted enrolment ids by the
// sequence number they joined with: a rank is a waitlist position.
func waitlistKey(offering string) string { return Keyspace.Key("waitlist", offering) }

func enrolmentKey(offering, id string) string { return Keyspace.Key("enrolment", offering, id) }

// bookingKey exists while the participant is enrolled or waitlisted on the
// offering, holding the enrolment id: one booking per participant and
// offering.
func bookingKey(offering, participant string) string {
	return Keyspace.Key("booking", offering, participant)
}

// participantKey is the participant's hash: the pseudonymous fields as its
// bytes and, apart, the sealed personal data (fieldPII).
func participantKey(id string) string { return Keyspace.Key("participant", id) }

// blindKey holds the id of the participant with a personal identity
// number, by the number's blind index (never the number).
func blindKey(index string) string { return Keyspace.Key("pin", index) }

// indexKeyIDKey records which blind-index key the index was built with.
func indexKeyIDKey() string { return Keyspace.Key("pii", "index-key") }

func idemKey(kind string, parts ...string) string {
	return Keyspace.Key(append([]string{"idem", kind}, parts...)...)
}

// Hash fields kept beside a resource's bytes.
const (
	fieldEnrolled    = "enrolled"     // offering: ENROLLED count
	fieldWaitSeq     = "waitseq"      // offering: the waitlist's sequence
	fieldPII         = "pii"          // participant: sealed ParticipantPersonalData
	fieldSnapshot    = "snapshot"     // enrolment: EnrolmentSnapshot bytes
	fieldRef         = "id"           // projectref, pin, booking: the id it points to
	blindUsePersonal = "personnummer" // the blind index's use for numbers
)

// unmarshal decodes a stored resource; bytes that do not decode are
// DATA_LOSS, logged with the key (never the bytes).
func (s *Service) unmarshal(ctx context.Context, key string, b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		s.log.ErrorContext(ctx, "stored resource does not decode", "key", key, "error", err)
		return status.Error(codes.DataLoss, "a stored resource could not be read")
	}
	return nil
}
