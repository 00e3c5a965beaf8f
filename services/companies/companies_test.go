package companies_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/companies"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

var ctx = context.Background()

// clock is the service's time, moved by tests.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time   { return time.Unix(0, c.t.Load()) }
func (c *clock) set(t time.Time)  { c.t.Store(t.UnixNano()) }
func (c *clock) tick()            { c.t.Add(int64(time.Millisecond)) }
func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }

// fakeCouncils is the councils service as the companies service sees it:
// GetCouncil of the councils it was given, NOT_FOUND for any other.
type fakeCouncils struct {
	councilsv1.UnimplementedCouncilsServiceServer
	calls atomic.Int64
}

var existingCouncils = map[string]bool{"councils/fordon": true, "councils/handel": true, "councils/teknik": true}

func (f *fakeCouncils) GetCouncil(_ context.Context, req *councilsv1.GetCouncilRequest) (*councilsv1.SectorCouncil, error) {
	f.calls.Add(1)
	if !existingCouncils[req.GetName()] {
		return nil, status.Errorf(codes.NotFound, "%s not found", req.GetName())
	}
	return &councilsv1.SectorCouncil{Name: req.GetName()}, nil
}

type env struct {
	c        companiesv1.CompaniesServiceClient
	rdb      redis.UniversalClient
	clock    *clock
	councils *fakeCouncils
}

// each runs f against a real redis-server and against the embedded store,
// with the service served over a real loopback gRPC connection behind the
// guard, and the councils service (a fake) reached through peer as in
// production.
func each(t *testing.T, f func(t *testing.T, e env)) {
	t.Helper()
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		fake := &fakeCouncils{}
		councilsConn := testkit.Serve(t, func(g *grpc.Server) { councilsv1.RegisterCouncilsServiceServer(g, fake) })
		e := serve(t, rdb, councilsConn.Target())
		e.councils = fake
		f(t, e)
	})
}

// serve serves the companies service on rdb with its councils peer at
// councilsAddr.
func serve(t *testing.T, rdb redis.UniversalClient, councilsAddr string) env {
	t.Helper()
	peerConn, err := peer.Dial("councils", councilsAddr, peer.WithLogger(testkit.Logger()), peer.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peerConn.Close() })
	clk := newClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	svc, err := companies.New(companies.Options{Redis: rdb, Logger: testkit.Logger(), Councils: peerConn, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	conn := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) }, testkit.Guarded(rdb, companies.Policy))
	return env{c: companiesv1.NewCompaniesServiceClient(conn), rdb: rdb, clock: clk}
}

// orgNumber is a valid organisation number of a legal person made from
// seed: synthetic, in a range (5599…) Bolagsverket has not reached, with
// the check digit computed.
func orgNumber(seed int) string {
	d := fmt.Sprintf("5599%05d", seed%100_000)
	sum := 0
	for i := range 9 {
		n := int(d[i] - '0')
		if i%2 == 0 {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return d[:6] + "-" + d[6:] + fmt.Sprint((10-sum%10)%10)
}

func company(id, number string) *companiesv1.CreateCompanyRequest {
	return &companiesv1.CreateCompanyRequest{CompanyId: id, Company: &companiesv1.Company{
		OrganisationNumber: number,
		DisplayName:        "Företag " + id,
		SniCode:            "29320",
		Municipality:       "1480",
		EmployeeCount:      proto.Int32(800),
		Council:            "councils/fordon",
	}}
}

func mustCompany(t *testing.T, e env, req *companiesv1.CreateCompanyRequest) *companiesv1.Company {
	t.Helper()
	e.clock.tick()
	c, err := e.c.CreateCompany(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func day(y, m, d int) *date.Date { return &date.Date{Year: int32(y), Month: int32(m), Day: int32(d)} }

func notice(parent string, kind companiesv1.Notice_Kind, affected int32, on *date.Date) *companiesv1.CreateNoticeRequest {
	return &companiesv1.CreateNoticeRequest{Parent: parent, Notice: &companiesv1.Notice{
		Kind: kind, AffectedEmployees: affected, NoticeDate: on, Occupations: []string{"8211 Montörer, fordon"},
	}}
}

func mustNotice(t *testing.T, e env, req *companiesv1.CreateNoticeRequest) *companiesv1.Notice {
	t.Helper()
	e.clock.tick()
	n, err := e.c.CreateNotice(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func session(parent, id string, conversation int32) *companiesv1.CreateCoachingSessionRequest {
	return &companiesv1.CreateCoachingSessionRequest{Parent: parent, CoachingSessionId: id, CoachingSession: &companiesv1.CoachingSession{
		Conversation: conversation, Coach: "Kompetenscoach, Framtidssäkrad industri", HeldOn: day(2026, 11, 20),
	}}
}

func mustSession(t *testing.T, e env, req *companiesv1.CreateCoachingSessionRequest) *companiesv1.CoachingSession {
	t.Helper()
	e.clock.tick()
	s, err := e.c.CreateCoachingSession(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("want %v, got %v", code, err)
	}
	return st
}

// unchanged fails unless the keyspace is as digest says (see digest).
func unchanged(t *testing.T, e env, before string) {
	t.Helper()
	if after := digest(t, e.rdb); after != before {
		t.Fatalf("a refused request wrote something:\nbefore %s\nafter  %s", before, after)
	}
}

// digest is every key with its type and content (a hash of it): what a
// refused request must leave as it was. (The guard records refusals only
// for PERMISSION_DENIED, which these tests do not provoke.)
func digest(t *testing.T, rdb redis.UniversalClient) string {
	t.Helper()
	var b strings.Builder
	for _, k := range sortStrings(testkit.Keys(t, rdb, "*")) {
		typ, _ := rdb.Type(ctx, k).Result()
		var content any
		switch typ {
		case "hash":
			content, _ = rdb.HGetAll(ctx, k).Result()
		case "zset":
			content, _ = rdb.ZRange(ctx, k, 0, -1).Result()
		case "set":
			m, _ := rdb.SMembers(ctx, k).Result()
			content = sortStrings(m)
		case "stream":
			content, _ = rdb.XRange(ctx, k, "-", "+").Result()
		case "string":
			content, _ = rdb.Get(ctx, k).Result()
		}
		h := sha256.Sum256(fmt.Appendf(nil, "%v", content))
		fmt.Fprintf(&b, "%s(%s %x) ", k, typ, h[:4])
	}
	return b.String()
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func eventTypes(t *testing.T, e env) []string {
	t.Helper()
	msgs, err := e.rdb.XRange(ctx, companies.Keyspace.Events(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		typ, _ := m.Values["type"].(string)
		out = append(out, strings.TrimPrefix(typ, "kompetensnav.companies.v1."))
	}
	return out
}

// Every accepted spelling is stored and returned as NNNNNN-NNNN, and found
// again by lookup in any spelling.
func TestOrganisationNumberIsNormalised(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		for i, spelling := range []string{"556012-5790", "5599900015", "165599900023", " 559990-0031 "} {
			c := mustCompany(t, e, company(fmt.Sprintf("c%d", i), spelling))
			want := strings.TrimSpace(spelling)
			if len(want) == 12 {
				want = want[2:]
			}
			if len(want) == 10 {
				want = want[:6] + "-" + want[6:]
			}
			if c.GetOrganisationNumber() != want {
				t.Fatalf("%q stored as %q, want %q", spelling, c.GetOrganisationNumber(), want)
			}
			for _, again := range []string{want, strings.ReplaceAll(want, "-", ""), "16" + strings.ReplaceAll(want, "-", "")} {
				got, err := e.c.LookupCompany(ctx, &companiesv1.LookupCompanyRequest{OrganisationNumber: again})
				if err != nil || got.GetName() != c.GetName() {
					t.Fatalf("lookup %q: %v, %v", again, got, err)
				}
			}
		}
		_, err := e.c.LookupCompany(ctx, &companiesv1.LookupCompanyRequest{OrganisationNumber: orgNumber(42)})
		wantCode(t, err, codes.NotFound)
		_, err = e.c.LookupCompany(ctx, &companiesv1.LookupCompanyRequest{OrganisationNumber: "556012-5791"})
		testkit.WantBadRequest(t, err, "organisation_number")
	})
}

// Wrong numbers are refused naming the field, with a message saying what
// is wrong, and nothing is written, on create and on update.
func TestWrongOrganisationNumbersAreRefused(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		existing := mustCompany(t, e, company("volvo", "556012-5790"))
		before := digest(t, e.rdb)
		for number, says := range map[string]string{
			"556012-5791":   "check digit",
			"556012-579":    "9 digits",
			"55601257900":   "11 digits",
			"5560125790123": "13 digits",
			"55601A-5790":   "only digits",
			"556012--5790":  "only digits",
			"5560-125790":   "hyphen",
			"121212-1212":   "personal identity number", // valid Luhn, digits 3–4 below 20: a sole trader's
			"191212121212":  "personal identity number",
			"":              "empty",
			"556012 5790":   "only digits",
		} {
			_, err := e.c.CreateCompany(ctx, company("ny", number))
			msg := testkit.WantBadRequest(t, err, "company.organisation_number")
			if !strings.Contains(msg, says) {
				t.Errorf("%q: %q does not say %q", number, msg, says)
			}
			_, err = e.c.UpdateCompany(ctx, &companiesv1.UpdateCompanyRequest{
				Company:    &companiesv1.Company{Name: existing.GetName(), OrganisationNumber: number},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"organisation_number"}}})
			testkit.WantBadRequest(t, err, "company.organisation_number")
		}
		unchanged(t, e, before)
	})
}

// Other fields: SNI code (format and division), municipality, display
// name, employee count.
func TestCompanyFieldsAreChecked(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		before := digest(t, e.rdb)
		for _, tc := range []struct {
			edit  func(*companiesv1.Company)
			field string
		}{
			{func(c *companiesv1.Company) { c.SniCode = "2932" }, "company.sni_code"},
			{func(c *companiesv1.Company) { c.SniCode = "04100" }, "company.sni_code"}, // no division 04
			{func(c *companiesv1.Company) { c.SniCode = "2a320" }, "company.sni_code"},
			{func(c *companiesv1.Company) { c.Municipality = "9999" }, "company.municipality"},
			{func(c *companiesv1.Company) { c.Municipality = "" }, "company.municipality"},
			{func(c *companiesv1.Company) { c.DisplayName = "" }, "company.display_name"},
			{func(c *companiesv1.Company) { c.DisplayName = strings.Repeat("x", 201) }, "company.display_name"},
			{func(c *companiesv1.Company) { c.EmployeeCount = proto.Int32(-1) }, "company.employee_count"},
			{func(c *companiesv1.Company) { c.Council = "fordon" }, "company.council"},
		} {
			req := company("ny", orgNumber(1))
			tc.edit(req.Company)
			_, err := e.c.CreateCompany(ctx, req)
			testkit.WantBadRequest(t, err, tc.field)
		}
		unchanged(t, e, before)
		// SCB's dotted SNI spelling is accepted and stored as five digits.
		req := company("dotted", orgNumber(2))
		req.Company.SniCode = "29.320"
		if c := mustCompany(t, e, req); c.GetSniCode() != "29320" {
			t.Fatalf("sni %q", c.GetSniCode())
		}
	})
}

// One number, one company: a second registration is ALREADY_EXISTS naming
// the first, in any spelling, on create and on update; a number given up
// by an update or a delete may be registered again.
func TestOrganisationNumberIsUnique(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		first := mustCompany(t, e, company("volvo", "556012-5790"))
		other := mustCompany(t, e, company("annat", orgNumber(7)))
		before := digest(t, e.rdb)
		for _, spelling := range []string{"556012-5790", "5560125790", "165560125790"} {
			_, err := e.c.CreateCompany(ctx, company("kopia", spelling))
			st := wantCode(t, err, codes.AlreadyExists)
			if !strings.Contains(st.Message(), "companies/volvo") || !strings.Contains(st.Message(), "556012-5790") {
				t.Fatalf("message %q does not name the holder and the number", st.Message())
			}
			var info *errdetails.ResourceInfo
			for _, d := range st.Details() {
				if ri, ok := d.(*errdetails.ResourceInfo); ok {
					info = ri
				}
			}
			if info.GetResourceName() != first.GetName() || info.GetResourceType() != "kompetensnav.se/Company" {
				t.Fatalf("ResourceInfo %v", info)
			}
		}
		_, err := e.c.UpdateCompany(ctx, &companiesv1.UpdateCompanyRequest{
			Company: &companiesv1.Company{Name: other.GetName(), OrganisationNumber: "5560125790"}})
		st := wantCode(t, err, codes.AlreadyExists)
		if !strings.Contains(st.Message(), "companies/volvo") {
			t.Fatalf("update: %q", st.Message())
		}
		unchanged(t, e, before)

		// volvo moves to a new number: its old one is free, the new one taken.
		moved, err := e.c.UpdateCompany(ctx, &companiesv1.UpdateCompanyRequest{
			Company: &companiesv1.Company{Name: first.GetName(), OrganisationNumber: "559990-0049", Etag: first.GetEtag()}})
		if err != nil || moved.GetOrganisationNumber() != "559990-0049" {
			t.Fatalf("update: %v, %v", moved, err)
		}
		mustCompany(t, e, company("ny-volvo", "556012-5790"))
		_, err = e.c.CreateCompany(ctx, company("kopia", "559990-0049"))
		wantCode(t, err, codes.AlreadyExists)
		found, err := e.c.LookupCompany(ctx, &companiesv1.LookupCompanyRequest{OrganisationNumber: "559990-0049"})
		if err != nil || found.GetName() != first.GetName() {
			t.Fatalf("lookup after move: %v, %v", found, err)
		}
		// A stale etag is ABORTED.
		_, err = e.c.UpdateCompany(ctx, &companiesv1.UpdateCompanyRequest{
			Company: &companiesv1.Company{Name: first.GetName(), DisplayName: "X", Etag: first.GetEtag()}})
		wantCode(t, err, codes.Aborted)
	})
}

// Concurrent registrations of one number, 2 and 50 at once (each under its
// own id, spelt differently): exactly one company, the rest ALREADY_EXISTS.
func TestConcurrentRegistrationsOfOneNumber(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		for round, n := range []int{2, 50} {
			number := orgNumber(100 + round)
			spellings := []string{number, strings.ReplaceAll(number, "-", ""), "16" + strings.ReplaceAll(number, "-", "")}
			var created, exists atomic.Int64
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					_, err := e.c.CreateCompany(ctx, company(fmt.Sprintf("r%d-%d", round, i), spellings[i%len(spellings)]))
					switch status.Code(err) {
					case codes.OK:
						created.Add(1)
					case codes.AlreadyExists:
						exists.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if created.Load() != 1 || exists.Load() != int64(n-1) {
				t.Fatalf("%d concurrent: %d created, %d refused", n, created.Load(), exists.Load())
			}
			list, err := e.c.ListCompanies(ctx, &companiesv1.ListCompaniesRequest{PageSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			holders := 0
			for _, c := range list.GetCompanies() {
				if c.GetOrganisationNumber() == number {
					holders++
				}
			}
			if holders != 1 {
				t.Fatalf("%d companies hold %s", holders, number)
			}
		}
	})
}

// The council must exist (asked of the councils service): an unknown one
// is a bad field, and a councils service that cannot be reached is
// UNAVAILABLE; either way nothing is written.
func TestCouncilIsCheckedWithTheCouncilsService(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCompany(t, e, company("volvo", "556012-5790"))
		before := digest(t, e.rdb)
		req := company("ny", orgNumber(3))
		req.Company.Council = "councils/nowhere"
		_, err := e.c.CreateCompany(ctx, req)
		if msg := testkit.WantBadRequest(t, err, "company.council"); !strings.Contains(msg, "councils/nowhere does not exist") {
			t.Fatalf("message %q", msg)
		}
		_, err = e.c.UpdateCompany(ctx, &companiesv1.UpdateCompanyRequest{Company: &companiesv1.Company{Name: c.GetName(), Council: "councils/nowhere"}})
		testkit.WantBadRequest(t, err, "company.council")
		unchanged(t, e, before)
		// An update that keeps the council does not ask again.
		calls := e.councils.calls.Load()
		if _, err := e.c.UpdateCompany(ctx, &companiesv1.UpdateCompanyRequest{Company: &companiesv1.Company{Name: c.GetName(), DisplayName: "Volvo"}}); err != nil {
			t.Fatal(err)
		}
		if e.councils.calls.Load() != calls {
			t.Fatal("the councils service was asked about an unchanged council")
		}
	})
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		// Nothing listens where the councils service should be.
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := lis.Addr().String()
		_ = lis.Close()
		e := serve(t, rdb, addr)
		before := digest(t, rdb)
		_, err = e.c.CreateCompany(ctx, company("volvo", "556012-5790"))
		st := wantCode(t, err, codes.Unavailable)
		if !strings.Contains(st.Message(), "councils service is unavailable") || !strings.Contains(st.Message(), "nothing was written") {
			t.Fatalf("message %q", st.Message())
		}
		unchanged(t, e, before)
	})
}

// A company retried with its request id is created once.
func TestCreateCompanyIsIdempotent(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		req := company("", "556012-5790")
		req.RequestId = "3f6c1e0a-9b1d-4f7e-8a43-1c2d3e4f5a6b"
		first := mustCompany(t, e, req)
		again := mustCompany(t, e, req)
		if again.GetName() != first.GetName() || !strings.HasPrefix(first.GetName(), "companies/") {
			t.Fatalf("%s then %s", first.GetName(), again.GetName())
		}
		if got := eventTypes(t, e); len(got) != 1 || got[0] != "company.created" {
			t.Fatalf("events %v", got)
		}
	})
}

// Notices: affected employees bounded by the company's count when known,
// the effective date not before the notice date, real dates; each refused
// naming the field, with nothing written.
func TestNoticeRules(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCompany(t, e, company("volvo", "556012-5790")) // 800 employees
		unknown := company("okand", orgNumber(4))
		unknown.Company.EmployeeCount = nil
		u := mustCompany(t, e, unknown)
		before := digest(t, e.rdb)
		for _, tc := range []struct {
			req   *companiesv1.CreateNoticeRequest
			field string
		}{
			{notice(c.GetName(), companiesv1.Notice_KIND_FURLOUGH, 801, day(2026, 3, 2)), "notice.affected_employees"},
			{notice(c.GetName(), companiesv1.Notice_KIND_FURLOUGH, 0, day(2026, 3, 2)), "notice.affected_employees"},
			{notice(u.GetName(), companiesv1.Notice_KIND_FURLOUGH, 100_001, day(2026, 3, 2)), "notice.affected_employees"},
			{notice(c.GetName(), companiesv1.Notice_KIND_UNSPECIFIED, 10, day(2026, 3, 2)), "notice.kind"},
			{notice(c.GetName(), companiesv1.Notice_KIND_FURLOUGH, 10, nil), "notice.notice_date"},
			{notice(c.GetName(), companiesv1.Notice_KIND_FURLOUGH, 10, day(2026, 2, 30)), "notice.notice_date"},
			{notice(c.GetName(), companiesv1.Notice_KIND_FURLOUGH, 10, day(2026, 11, 26)), "notice.notice_date"}, // tomorrow
		} {
			_, err := e.c.CreateNotice(ctx, tc.req)
			testkit.WantBadRequest(t, err, tc.field)
		}
		early := notice(c.GetName(), companiesv1.Notice_KIND_REDUNDANCY, 40, day(2026, 4, 2))
		early.Notice.EffectiveDate = day(2026, 3, 1)
		_, err := e.c.CreateNotice(ctx, early)
		if msg := testkit.WantBadRequest(t, err, "notice.effective_date"); !strings.Contains(msg, "before the notice date") {
			t.Fatalf("message %q", msg)
		}
		_, err = e.c.CreateNotice(ctx, notice("companies/nowhere", companiesv1.Notice_KIND_FURLOUGH, 10, day(2026, 3, 2)))
		wantCode(t, err, codes.NotFound)
		unchanged(t, e, before)

		// Within the rules: all employees, an unknown count, the same day.
		mustNotice(t, e, notice(c.GetName(), companiesv1.Notice_KIND_LAYOFF, 800, day(2026, 3, 2)))
		mustNotice(t, e, notice(u.GetName(), companiesv1.Notice_KIND_FURLOUGH, 100_000, day(2026, 3, 2)))
		same := notice(c.GetName(), companiesv1.Notice_KIND_REDUNDANCY, 40, day(2026, 4, 2))
		same.Notice.EffectiveDate = day(2026, 4, 2)
		mustNotice(t, e, same)
		// A smaller workforce bounds later notices only.
		if _, err := e.c.UpdateCompany(ctx, &companiesv1.UpdateCompanyRequest{Company: &companiesv1.Company{Name: c.GetName(), EmployeeCount: proto.Int32(100)}}); err != nil {
			t.Fatal(err)
		}
		_, err = e.c.CreateNotice(ctx, notice(c.GetName(), companiesv1.Notice_KIND_FURLOUGH, 120, day(2026, 5, 2)))
		testkit.WantBadRequest(t, err, "notice.affected_employees")
	})
}

// A notice carries its company's council and municipality, in the
// resource and in its notice.created event; deleting it emits
// notice.deleted.
func TestNoticeEvents(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		req := company("volvo", "556012-5790")
		req.Company.Municipality = "1440"
		c := mustCompany(t, e, req)
		n := mustNotice(t, e, notice(c.GetName(), companiesv1.Notice_KIND_FURLOUGH, 120, day(2026, 3, 2)))
		if n.GetCouncil() != "councils/fordon" || n.GetMunicipality() != "1440" || n.GetEtag() == "" || n.GetCreateTime() == nil {
			t.Fatalf("notice %v", n)
		}
		msgs, err := e.rdb.XRange(ctx, companies.Keyspace.Events(), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		last := msgs[len(msgs)-1]
		if last.Values["type"] != "kompetensnav.companies.v1.notice.created" {
			t.Fatalf("last event %v", last.Values["type"])
		}
		ev := eventOf(t, last)
		var data companiesv1.Notice
		if err := ev.GetData().UnmarshalTo(&data); err != nil {
			t.Fatal(err)
		}
		if ev.GetSubject() != n.GetName() || data.GetCouncil() != "councils/fordon" || data.GetMunicipality() != "1440" || data.GetAffectedEmployees() != 120 {
			t.Fatalf("event %v with %v", ev, &data)
		}
		if _, err := e.c.DeleteNotice(ctx, &companiesv1.DeleteNoticeRequest{Name: n.GetName()}); err != nil {
			t.Fatal(err)
		}
		if got := eventTypes(t, e); got[len(got)-1] != "notice.deleted" {
			t.Fatalf("events %v", got)
		}
		_, err = e.c.GetNotice(ctx, &companiesv1.GetNoticeRequest{Name: n.GetName()})
		wantCode(t, err, codes.NotFound)
	})
}

// eventOf decodes a stream entry's envelope.
func eventOf(t *testing.T, m redis.XMessage) *commonv1.Event {
	t.Helper()
	raw, _ := m.Values["event"].(string)
	ev := &commonv1.Event{}
	if err := proto.Unmarshal([]byte(raw), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// Deleting a company is refused while it has a notice dated in the last 12
// months or a coaching session still planned, checked in the delete's
// atomic step. Its records stay readable, its number may be registered
// again, and its name is not given out again.
func TestDeleteCompany(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCompany(t, e, company("volvo", "556012-5790"))
		// Today is 2026-11-25: 2025-11-25 is within the last 12 months.
		recent := mustNotice(t, e, notice(c.GetName(), companiesv1.Notice_KIND_FURLOUGH, 10, day(2025, 11, 25)))
		old := mustNotice(t, e, notice(c.GetName(), companiesv1.Notice_KIND_FURLOUGH, 10, day(2025, 11, 24)))
		s := mustSession(t, e, session(c.GetName(), "samtal-1", 1))
		before := digest(t, e.rdb)
		_, err := e.c.DeleteCompany(ctx, &companiesv1.DeleteCompanyRequest{Name: c.GetName()})
		if st := wantCode(t, err, codes.FailedPrecondition); !strings.Contains(st.Message(), "notices dated since 2025-11-25") {
			t.Fatalf("message %q", st.Message())
		}
		unchanged(t, e, before)
		if _, err := e.c.DeleteNotice(ctx, &companiesv1.DeleteNoticeRequest{Name: recent.GetName()}); err != nil {
			t.Fatal(err)
		}
		before = digest(t, e.rdb)
		_, err = e.c.DeleteCompany(ctx, &companiesv1.DeleteCompanyRequest{Name: c.GetName()})
		if st := wantCode(t, err, codes.FailedPrecondition); !strings.Contains(st.Message(), "planned") {
			t.Fatalf("message %q", st.Message())
		}
		unchanged(t, e, before)
		if _, err := e.c.CancelCoachingSession(ctx, &companiesv1.CancelCoachingSessionRequest{Name: s.GetName(), Reason: "Företaget avböjde"}); err != nil {
			t.Fatal(err)
		}
		_, err = e.c.DeleteCompany(ctx, &companiesv1.DeleteCompanyRequest{Name: c.GetName(), Etag: "0000000000000000"})
		wantCode(t, err, codes.Aborted)
		if _, err := e.c.DeleteCompany(ctx, &companiesv1.DeleteCompanyRequest{Name: c.GetName()}); err != nil {
			t.Fatal(err)
		}
		_, err = e.c.GetCompany(ctx, &companiesv1.GetCompanyRequest{Name: c.GetName()})
		wantCode(t, err, codes.NotFound)
		_, err = e.c.LookupCompany(ctx, &companiesv1.LookupCompanyRequest{OrganisationNumber: "556012-5790"})
		wantCode(t, err, codes.NotFound)
		// The old notice and the cancelled session stay on record.
		if _, err := e.c.GetNotice(ctx, &companiesv1.GetNoticeRequest{Name: old.GetName()}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.GetCoachingSession(ctx, &companiesv1.GetCoachingSessionRequest{Name: s.GetName()}); err != nil {
			t.Fatal(err)
		}
		// The name is not reused; the number may be.
		_, err = e.c.CreateCompany(ctx, company("volvo", orgNumber(9)))
		if st := wantCode(t, err, codes.AlreadyExists); !strings.Contains(st.Message(), "was deleted") {
			t.Fatalf("message %q", st.Message())
		}
		again := mustCompany(t, e, company("volvo-ny", "556012-5790"))
		if got := eventTypes(t, e); !containsInOrder(got, "company.created", "company.deleted", "company.created") {
			t.Fatalf("events %v", got)
		}
		_, err = e.c.DeleteCompany(ctx, &companiesv1.DeleteCompanyRequest{Name: "companies/nowhere"})
		wantCode(t, err, codes.NotFound)
		_ = again
	})
}

// A notice recorded while the company is deleted either lands first (and
// the delete is refused) or finds no company: never a recent notice of a
// deleted company.
func TestDeleteRacesWithNotices(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		for i := range 10 {
			c := mustCompany(t, e, company(fmt.Sprintf("race-%d", i), orgNumber(200+i)))
			var wg sync.WaitGroup
			var noticeErr, deleteErr error
			wg.Go(func() {
				_, noticeErr = e.c.CreateNotice(ctx, notice(c.GetName(), companiesv1.Notice_KIND_REDUNDANCY, 5, day(2026, 11, 1)))
			})
			wg.Go(func() { _, deleteErr = e.c.DeleteCompany(ctx, &companiesv1.DeleteCompanyRequest{Name: c.GetName()}) })
			wg.Wait()
			switch {
			case noticeErr == nil && status.Code(deleteErr) == codes.FailedPrecondition:
			case deleteErr == nil && status.Code(noticeErr) == codes.NotFound:
			default:
				t.Fatalf("notice %v, delete %v", noticeErr, deleteErr)
			}
		}
	})
}

func containsInOrder(got []string, want ...string) bool {
	for _, g := range got {
		if len(want) > 0 && g == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}
