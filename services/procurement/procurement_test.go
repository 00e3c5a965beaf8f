package procurement_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/kompetensnav/kompetensnav/services/procurement"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// clock is the service's time, moved by tests.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time             { return time.Unix(0, c.t.Load()) }
func (c *clock) set(t time.Time)            { c.t.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration)        { c.t.Add(int64(d)) }
func (c *clock) tick()                      { c.t.Add(int64(time.Millisecond)) }
func newClock(t time.Time) *clock           { c := &clock{}; c.set(t); return c }
func day(y, m, d int32) *date.Date          { return &date.Date{Year: y, Month: m, Day: d} }
func sekOf(units int64) *money.Money        { return &money.Money{CurrencyCode: "SEK", Units: units} }
func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// start is when the tests' clock starts: a Monday morning in March 2026.
var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// fakeCouncils stands in for the councils service: it answers GetNeed
// from needs, which tests set. (The real one is exercised end to end in
// cmd/kompetensnav/internal/app.)
type fakeCouncils struct {
	councilsv1.UnimplementedCouncilsServiceServer
	stop  func() // stops serving: the councils service is down
	mu    sync.Mutex
	needs map[string]*councilsv1.CompetenceNeed
	calls atomic.Int64
}

func (f *fakeCouncils) GetNeed(_ context.Context, req *councilsv1.GetNeedRequest) (*councilsv1.CompetenceNeed, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.needs[req.GetName()]
	if !ok {
		return nil, apierr.NotFound(req.GetName())
	}
	return proto.CloneOf(n), nil
}

func (f *fakeCouncils) put(name string, state councilsv1.CompetenceNeed_State, municipalities ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.needs[name] = &councilsv1.CompetenceNeed{Name: name, Title: "Svetsning med robot", Headcount: 40, State: state,
		Municipalities: municipalities, Priority: councilsv1.Priority_PRIORITY_HIGH}
}

func serveFakeCouncils(t *testing.T) (*fakeCouncils, string) {
	t.Helper()
	f := &fakeCouncils{needs: map[string]*councilsv1.CompetenceNeed{}}
	srv := grpc.NewServer()
	councilsv1.RegisterCouncilsServiceServer(srv, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	f.stop = srv.Stop
	return f, lis.Addr().String()
}

// fakeSkills stands in for the skills service: it answers BatchGetSkills
// from skills, as the real one does (all or nothing, NOT_FOUND with a
// ResourceInfo per missing skill), and records each call's names. (The
// real one is exercised end to end in cmd/kompetensnav/internal/app.)
type fakeSkills struct {
	skillsv1.UnimplementedSkillsServiceServer
	stop   func() // stops serving: the skills service is down
	mu     sync.Mutex
	skills map[string]*skillsv1.Skill
	asked  [][]string
}

func (f *fakeSkills) BatchGetSkills(_ context.Context, req *skillsv1.BatchGetSkillsRequest) (*skillsv1.BatchGetSkillsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, slices.Clone(req.GetNames()))
	out := &skillsv1.BatchGetSkillsResponse{}
	st := status.New(codes.NotFound, "skills do not exist")
	missing := false
	for _, n := range req.GetNames() {
		sk, ok := f.skills[n]
		if !ok {
			missing = true
			st, _ = st.WithDetails(&errdetails.ResourceInfo{ResourceType: "kompetensnav.se/Skill", ResourceName: n})
			continue
		}
		out.Skills = append(out.Skills, proto.CloneOf(sk))
	}
	if missing {
		return nil, st.Err()
	}
	return out, nil
}

func (f *fakeSkills) put(name string, replacedBy string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skills[name] = &skillsv1.Skill{Name: name, PreferredLabel: map[string]string{"sv": name},
		Deprecated: replacedBy != "", ReplacedBy: replacedBy}
}

// calls is the BatchGetSkills calls made so far, each call's names.
func (f *fakeSkills) calls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}

// The tests' taxonomy: the skills the requests name, and a deprecated one.
var testSkills = []string{"skills/svetsning", "skills/cnc-programmering", "skills/hogvoltssakerhet", "skills/robotsvetsning"}

func serveFakeSkills(t *testing.T) (*fakeSkills, string) {
	t.Helper()
	f := &fakeSkills{skills: map[string]*skillsv1.Skill{}}
	for _, n := range testSkills {
		f.put(n, "")
	}
	f.put("skills/elsakerhet-fordon", "skills/hogvoltssakerhet")
	srv := grpc.NewServer()
	skillsv1.RegisterSkillsServiceServer(srv, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	f.stop = srv.Stop
	return f, lis.Addr().String()
}

type env struct {
	c        procurementv1.ProcurementServiceClient
	svc      *procurement.Service
	rdb      redis.UniversalClient
	clock    *clock
	councils *fakeCouncils
	skills   *fakeSkills
}

// each runs f against a real redis-server and against the embedded store,
// with the service served over a real loopback gRPC connection behind the
// guard (calls are staff unless a context says otherwise).
func each(t *testing.T, f func(t *testing.T, e env)) {
	t.Helper()
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		f(t, newEnv(t, rdb))
	})
}

func newEnv(t *testing.T, rdb redis.UniversalClient) env {
	t.Helper()
	clk := newClock(start)
	councils, addr := serveFakeCouncils(t)
	conn, err := peer.Dial("councils", addr, peer.WithLogger(testkit.Logger()), peer.WithTransport(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	skills, skillsAddr := serveFakeSkills(t)
	// A short deadline: a test of the skills service down waits for it.
	skillsConn, err := peer.Dial("skills", skillsAddr, peer.WithLogger(testkit.Logger()), peer.WithTransport(insecure.NewCredentials()),
		peer.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = skillsConn.Close() })
	svc, err := procurement.New(procurement.Options{Redis: rdb, Logger: testkit.Logger(), Councils: conn, Skills: skillsConn, Now: clk.now,
		SweepEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	gc := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) }, testkit.Guarded(rdb, procurement.Policy))
	return env{c: procurementv1.NewProcurementServiceClient(gc), svc: svc, rdb: rdb, clock: clk, councils: councils, skills: skills}
}

// background runs the service's consumers and sweeper until the test ends.
func (e env) background(t *testing.T) {
	bg := events.Start(context.Background(), testkit.Logger(), e.svc.Background()...)
	t.Cleanup(bg.Stop)
}

var ctx = context.Background()

func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("want %v, got %v", code, err)
	}
	return st
}

// Organisation numbers with valid check digits (legal persons).
var orgNumbers = []string{"556012-5790", "556036-0793", "556677-0011", "556475-6467", "556188-8727", "556703-7485"}

func providerReq(id, orgNo string, kinds ...procurementv1.Provider_Kind) *procurementv1.CreateProviderRequest {
	if len(kinds) == 0 {
		kinds = []procurementv1.Provider_Kind{procurementv1.Provider_KIND_TRAINING_PROVIDER}
	}
	p := &procurementv1.Provider{OrganisationNumber: orgNo, DisplayName: "Utbildare " + id, Kinds: kinds,
		ContactEmail: "upphandling@example.org", Municipalities: []string{"1480", "1481"}}
	for _, k := range kinds {
		if k == procurementv1.Provider_KIND_TEST_CENTRE {
			p.Accreditations = []*procurementv1.Accreditation{{SkillArea: "skills/svetsning", Body: "Svetskommissionen", ValidUntil: day(2027, 12, 31)}}
		}
	}
	return &procurementv1.CreateProviderRequest{ProviderId: id, Provider: p}
}

func mustProvider(t *testing.T, e env, req *procurementv1.CreateProviderRequest) *procurementv1.Provider {
	t.Helper()
	e.clock.tick()
	p, err := e.c.CreateProvider(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// threeProviders registers providers a, b and c (training) and centre (a
// test centre accredited for skills/svetsning).
func threeProviders(t *testing.T, e env) {
	t.Helper()
	for i, id := range []string{"a", "b", "c"} {
		mustProvider(t, e, providerReq(id, orgNumbers[i]))
	}
	mustProvider(t, e, providerReq("centre", orgNumbers[3], procurementv1.Provider_KIND_TEST_CENTRE))
}

func agreementReq(id string, method procurementv1.AwardMethod, ceiling int64) *procurementv1.CreateFrameworkAgreementRequest {
	a := &procurementv1.FrameworkAgreement{
		ReferenceNumber: "GR-2026-" + id, Title: "Teknik- och industriutbildning",
		ValidFrom: day(2026, 1, 1), ValidUntil: day(2029, 12, 31),
		CeilingValue: sekOf(ceiling), AwardMethod: method,
		Lots: []*procurementv1.Lot{
			{Id: "svets", Title: "Svetsning", SkillAreas: []string{"skills/svetsning"},
				Providers: []string{"providers/a", "providers/b", "providers/c"}},
			{Id: "validering", Title: "Branschvalidering", Kind: procurementv1.Lot_KIND_ASSESSMENT,
				SkillAreas: []string{"skills/svetsning"}, Providers: []string{"providers/centre"}},
		},
	}
	if method != procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER {
		a.PriceWeight, a.QualityWeight = 60, 40
	}
	return &procurementv1.CreateFrameworkAgreementRequest{FrameworkAgreementId: id, FrameworkAgreement: a}
}

// activeAgreement registers the providers and an ACTIVE agreement.
func activeAgreement(t *testing.T, e env, id string, method procurementv1.AwardMethod, ceiling int64) *procurementv1.FrameworkAgreement {
	t.Helper()
	if _, err := e.c.GetProvider(ctx, &procurementv1.GetProviderRequest{Name: "providers/a"}); status.Code(err) == codes.NotFound {
		threeProviders(t, e)
	}
	e.clock.tick()
	if _, err := e.c.CreateFrameworkAgreement(ctx, agreementReq(id, method, ceiling)); err != nil {
		t.Fatal(err)
	}
	a, err := e.c.ActivateFrameworkAgreement(ctx, &procurementv1.ActivateFrameworkAgreementRequest{Name: "frameworkAgreements/" + id})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var needSeq atomic.Int64

// approvedNeed makes an APPROVED need in the fake councils service.
func approvedNeed(e env) string {
	name := "councils/teknik/needs/n" + strconv.FormatInt(needSeq.Add(1), 10)
	e.councils.put(name, councilsv1.CompetenceNeed_STATE_APPROVED, "1480", "1481")
	return name
}

func callOffReq(id, agreement, lot, need string, value int64) *procurementv1.CreateCallOffRequest {
	return &procurementv1.CreateCallOffRequest{CallOffId: id, CallOff: &procurementv1.CallOff{
		FrameworkAgreement: agreement, Lot: lot, Need: need, Value: sekOf(value),
		Specification: &procurementv1.Specification{Skills: []string{"skills/svetsning"}, Days: 5, Participants: 12,
			Municipality: "1480", LatestStart: day(2026, 9, 1)},
	}}
}

func mustCallOff(t *testing.T, e env, req *procurementv1.CreateCallOffRequest) *procurementv1.CallOff {
	t.Helper()
	e.clock.tick()
	c, err := e.c.CreateCallOff(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// digest is every key and value of the store: what a refused request must
// leave unchanged. (By type, not DUMP: the embedded store has no DUMP of
// streams.)
func digest(t *testing.T, rdb redis.UniversalClient) string {
	t.Helper()
	keys := testkit.Keys(t, rdb, "*")
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		if strings.HasSuffix(k, ":audit") {
			continue // refusals are audited; this is about the data
		}
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			var m map[string]string
			m, err = rdb.HGetAll(ctx, k).Result()
			v = fmt.Sprint(m) // fmt sorts map keys
		case "set":
			var ms []string
			ms, err = rdb.SMembers(ctx, k).Result()
			sort.Strings(ms)
			v = ms
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "stream":
			v, err = rdb.XRange(ctx, k, "-", "+").Result()
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s\x00%s\x00%v\x00", k, typ, v)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func eventTypes(t *testing.T, e env) []string {
	t.Helper()
	msgs, err := e.rdb.XRange(ctx, procurement.Keyspace.Events(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		typ, _ := m.Values["type"].(string)
		out = append(out, strings.TrimPrefix(typ, "kompetensnav.procurement.v1."))
	}
	return out
}

// eventually polls cond for up to five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
