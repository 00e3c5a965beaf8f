package enrolment_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/genproto/googleapis/type/timeofday"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var ctx = context.Background()

// clock is the service's time, moved by tests.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time  { return time.Unix(0, c.t.Load()) }
func (c *clock) set(t time.Time) { c.t.Store(t.UnixNano()) }
func (c *clock) tick()           { c.t.Add(int64(time.Millisecond)) }

// start is "today" in the tests: 2 March 2026, in Sweden.
var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// syncBuffer is a log sink the service writes to from many goroutines.
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

// callOffs is what procurement would answer, as the test sets it up.
type callOffs struct {
	mu   sync.Mutex
	byID map[string]enrolment.CallOff
	down bool
}

func (c *callOffs) CallOff(_ context.Context, name string) (enrolment.CallOff, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return enrolment.Unavailable("procurement").CallOff(ctx, name)
	}
	co, ok := c.byID[name]
	if !ok {
		return co, enrolment.ErrNotFound
	}
	return co, nil
}

func (c *callOffs) set(co enrolment.CallOff) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byID[co.Name] = co
}

// companies is what the companies service would answer.
type companies map[string]string // name → council

func (c companies) Company(_ context.Context, name string) (enrolment.Company, error) {
	council, ok := c[name]
	if !ok {
		return enrolment.Company{}, enrolment.ErrNotFound
	}
	return enrolment.Company{Name: name, Council: council}, nil
}

type env struct {
	c        enrolmentv1.EnrolmentServiceClient
	svc      *enrolment.Service
	rdb      redis.UniversalClient
	clock    *clock
	callOffs *callOffs
	keys     *pii.Keys
	log      *syncBuffer
}

// each runs f against a real redis-server and against the embedded store,
// with the service served over a real loopback gRPC connection behind the
// guard (calls are staff unless a context says otherwise).
func each(t *testing.T, f func(t *testing.T, e env)) {
	t.Helper()
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		f(t, newEnv(t, rdb, pii.Generate()))
	})
}

func newEnv(t testing.TB, rdb redis.UniversalClient, keys *pii.Keys) env {
	t.Helper()
	clk := &clock{}
	clk.set(start)
	log := &syncBuffer{}
	co := &callOffs{byID: map[string]enrolment.CallOff{}}
	co.set(enrolment.CallOff{Name: "callOffs/svets", State: "STATE_AWARDED", Awarded: true, Provider: "providers/lernia",
		Skills: []string{"skills/robotsvetsning"}, Days: 3})
	co.set(enrolment.CallOff{Name: "callOffs/cnc", State: "STATE_AWARDED", Awarded: true, Provider: "providers/folkuniversitetet",
		Skills: []string{"skills/cnc"}, Days: 1})
	co.set(enrolment.CallOff{Name: "callOffs/offered", State: "STATE_OFFERED", Provider: "providers/lernia", Days: 3})
	svc, err := enrolment.New(enrolment.Options{
		Redis: rdb, Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Keys: keys, CallOffs: co,
		Companies: companies{"companies/volvo-cars": "councils/fordon", "companies/skf": "councils/teknik"},
		Now:       clk.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	conn := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) }, testkit.Guarded(rdb, enrolment.Policy))
	return env{c: enrolmentv1.NewEnrolmentServiceClient(conn), svc: svc, rdb: rdb, clock: clk, callOffs: co, keys: keys, log: log}
}

func d(y, m, day int) *date.Date { return &date.Date{Year: int32(y), Month: int32(m), Day: int32(day)} }

func sek(units int64) *money.Money { return &money.Money{CurrencyCode: "SEK", Units: units} }

// gr is Göteborgsregionen's 13 municipalities.
var gr = []string{"1401", "1402", "1407", "1415", "1419", "1440", "1441", "1462", "1480", "1481", "1482", "1489", "1384"}

// vastkraft is a project with VästKraft's targets, running this year.
func vastkraft(id string) *enrolmentv1.CreateProjectRequest {
	return &enrolmentv1.CreateProjectRequest{ProjectId: id, Project: &enrolmentv1.Project{
		ReferenceNumber: "VK-" + id, DisplayName: "VästKraft " + id, Funder: "Europeiska socialfonden",
		StartDate: d(2026, 1, 1), EndDate: d(2027, 12, 31), Budget: sek(40_000_000), Region: gr,
		EligibleTargetGroups: []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_EMPLOYED_AT_RISK,
			commonv1.TargetGroup_TARGET_GROUP_NOTIFIED, commonv1.TargetGroup_TARGET_GROUP_FURLOUGHED,
			commonv1.TargetGroup_TARGET_GROUP_LAID_OFF, commonv1.TargetGroup_TARGET_GROUP_JOB_SEEKER},
		Targets: &enrolmentv1.Targets{Participants: 3500, Women: 1000, Employed: 2500, JobSeekers: 1000},
	}}
}

func session(y, m, day int) *enrolmentv1.Session {
	return &enrolmentv1.Session{Date: d(y, m, day), StartTime: &timeofday.TimeOfDay{Hours: 8}, EndTime: &timeofday.TimeOfDay{Hours: 16},
		Location: "Lindholmen, Göteborg"}
}

// svets is an offering of the three-day call-off callOffs/svets.
func svets(id, project string, capacity int32) *enrolmentv1.CreateOfferingRequest {
	return &enrolmentv1.CreateOfferingRequest{OfferingId: id, Offering: &enrolmentv1.Offering{
		CallOff: "callOffs/svets", Project: project, Title: "Robotsvetsning för operatörer",
		Sessions: []*enrolmentv1.Session{session(2026, 4, 13), session(2026, 4, 14), session(2026, 4, 15)},
		Capacity: capacity, Municipality: "1480", Mode: enrolmentv1.Offering_MODE_CLASSROOM,
		RegistrationDeadline: d(2026, 4, 1),
	}}
}

// number is a generated valid personal identity number, YYYYMMDD-NNNN
// (a samordningsnummer with coordination set): never a real person's by
// intent, though any valid number may belong to someone, which is why the
// tests never print one.
func number(year, month, day, serial int, coordination bool) string {
	if coordination {
		day += 60
	}
	ten := fmt.Sprintf("%02d%02d%02d%03d", year%100, month, day, serial)
	return fmt.Sprintf("%04d%02d%02d-%03d%d", year, month, day, serial, luhn(ten))
}

func luhn(nine string) int {
	sum := 0
	for i := range len(nine) {
		v := int(nine[i] - '0')
		if i%2 == 0 {
			if v *= 2; v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return (10 - sum%10) % 10
}

// nthNumber is the i-th of up to a few million distinct generated
// numbers, people born 1960–1999.
func nthNumber(i int) string {
	day := i % 13440
	return number(1960+day%40, 1+(day/40)%12, 1+(day/480)%28, 100+i/13440, false)
}

func person(pnr string) *enrolmentv1.Participant {
	return &enrolmentv1.Participant{
		PersonalIdentityNumber: pnr, GivenName: "Testa", FamilyName: "Testsson", Gender: enrolmentv1.Gender_GENDER_WOMAN,
		Municipality: "1480", LabourMarketStatus: enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_NOTIFIED,
		EducationLevel: enrolmentv1.EducationLevel_EDUCATION_LEVEL_ISCED_3_4,
	}
}

func mustProject(t testing.TB, e env, req *enrolmentv1.CreateProjectRequest) *enrolmentv1.Project {
	t.Helper()
	e.clock.tick()
	p, err := e.c.CreateProject(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustOffering(t testing.TB, e env, req *enrolmentv1.CreateOfferingRequest, open bool) *enrolmentv1.Offering {
	t.Helper()
	e.clock.tick()
	o, err := e.c.CreateOffering(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if open {
		if o, err = e.c.OpenOffering(ctx, &enrolmentv1.OpenOfferingRequest{Name: o.GetName()}); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func mustParticipant(t testing.TB, e env, p *enrolmentv1.Participant) *enrolmentv1.Participant {
	t.Helper()
	e.clock.tick()
	got, err := e.c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: p})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func enrol(e env, offering, participant string) (*enrolmentv1.Enrolment, error) {
	return e.c.CreateEnrolment(ctx, &enrolmentv1.CreateEnrolmentRequest{Parent: offering,
		Enrolment: &enrolmentv1.Enrolment{Participant: participant}})
}

func wantCode(t testing.TB, err error, code codes.Code) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("want %v, got %v", code, err)
	}
	return st
}

// wantRule fails unless err is FAILED_PRECONDITION with a
// PreconditionFailure naming rule.
func wantRule(t testing.TB, err error, rule string) {
	t.Helper()
	st := wantCode(t, err, codes.FailedPrecondition)
	for _, dt := range st.Details() {
		if pf, ok := dt.(*errdetails.PreconditionFailure); ok {
			for _, v := range pf.GetViolations() {
				if v.GetType() == rule {
					return
				}
			}
		}
	}
	t.Fatalf("no %s violation in %v", rule, err)
}

// digest is a fingerprint of every key and value, to prove a refused
// request wrote nothing.
func digest(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	dump := dumpAll(t, rdb)
	keys := make([]string, 0, len(dump))
	for k := range dump {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%q=%q\n", k, dump[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// dumpAll is every key with its whole value as text (hash fields, set and
// sorted-set members with scores, stream entries with their fields).
func dumpAll(t testing.TB, rdb redis.UniversalClient) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range testkit.Keys(t, rdb, "*") {
		out[k] = valueOf(t, rdb, k)
	}
	return out
}

func valueOf(t testing.TB, rdb redis.UniversalClient, key string) string {
	t.Helper()
	typ, err := rdb.Type(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	switch typ {
	case "string":
		b.WriteString(rdb.Get(ctx, key).Val())
	case "hash":
		m := rdb.HGetAll(ctx, key).Val()
		fs := make([]string, 0, len(m))
		for f := range m {
			fs = append(fs, f)
		}
		sort.Strings(fs)
		for _, f := range fs {
			fmt.Fprintf(&b, "%s=%s\n", f, m[f])
		}
	case "set":
		ms := rdb.SMembers(ctx, key).Val()
		sort.Strings(ms)
		for _, m := range ms {
			b.WriteString(m + "\n")
		}
	case "zset":
		for _, z := range rdb.ZRangeWithScores(ctx, key, 0, -1).Val() {
			fmt.Fprintf(&b, "%v %v\n", z.Score, z.Member)
		}
	case "list":
		for _, v := range rdb.LRange(ctx, key, 0, -1).Val() {
			b.WriteString(v + "\n")
		}
	case "stream":
		for _, m := range rdb.XRange(ctx, key, "-", "+").Val() {
			fs := make([]string, 0, len(m.Values))
			for f := range m.Values {
				fs = append(fs, f)
			}
			sort.Strings(fs)
			fmt.Fprintf(&b, "%s", m.ID)
			for _, f := range fs {
				fmt.Fprintf(&b, " %s=%v", f, m.Values[f])
			}
			b.WriteString("\n")
		}
	case "none":
	default:
		t.Fatalf("key %s of type %s", key, typ)
	}
	return b.String()
}

// eventTypes are the types on the enrolment event stream, in order.
func eventTypes(t testing.TB, e env) []string {
	t.Helper()
	msgs, err := e.rdb.XRange(ctx, enrolment.Keyspace.Events(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		typ, _ := m.Values["type"].(string)
		out = append(out, typ)
	}
	return out
}

func count(types []string, typ string) int {
	return len(slices.DeleteFunc(slices.Clone(types), func(s string) bool { return s != "kompetensnav.enrolment.v1."+typ }))
}
