package companies_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	"github.com/kompetensnav/kompetensnav/services/companies"
	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// principal is one column of the matrix: a role, bound where it is bound.
type principal struct {
	label   string
	role    auth.Role
	subject string
}

// The company principal is bound to companies/volvo: "own" objects are
// volvo's, "other" ones annat's. The council principal reads every
// company (their industry's companies are not secret), so own and other
// are the same to it, as to the unbound roles.
var principals = []principal{
	{"staff", auth.Staff, ""},
	{"council", auth.Council, "councils/fordon"},
	{"company", auth.Company, "companies/volvo"},
	{"provider", auth.Provider, "providers/lernia"},
	{"partner", auth.Partner, ""},
	{"auditor", auth.Auditor, ""},
}

const (
	ok     = codes.OK
	denied = codes.PermissionDenied
)

// want is a row's expected code per principal, for the call on the
// company principal's own company and on another's.
type want map[string][2]codes.Code

func same(c codes.Code) [2]codes.Code { return [2]codes.Code{c, c} }

// The shapes of row.
var (
	onlyStaff = want{"staff": same(ok), "council": same(denied), "company": same(denied),
		"provider": same(denied), "partner": same(denied), "auditor": same(denied)}
	staffAndOwnCompany = want{"staff": same(ok), "council": same(denied), "company": {ok, denied},
		"provider": same(denied), "partner": same(denied), "auditor": same(denied)}
	staffCouncilAndOwnCompany = want{"staff": same(ok), "council": same(ok), "company": {ok, denied},
		"provider": same(denied), "partner": same(denied), "auditor": same(denied)}
	staffAndCouncil = want{"staff": same(ok), "council": same(ok), "company": same(denied),
		"provider": same(denied), "partner": same(denied), "auditor": same(denied)}
	aggregates = want{"staff": same(ok), "council": same(ok), "company": same(denied),
		"provider": same(denied), "partner": same(ok), "auditor": same(ok)}
)

// matrixRow is one RPC: setup makes (as staff) what the call needs in a
// company and returns the name the call acts on; call makes it.
type matrixRow struct {
	method string
	setup  func(t *testing.T, e env, company string) string
	call   func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error
	want   want
}

func companyName(_ *testing.T, _ env, company string) string { return "companies/" + company }

var seq int

func next() int { seq++; return seq }

// freshCompany makes a company without notices or coaching (deletable).
func freshCompany(t *testing.T, e env, _ string) string {
	return mustCompany(t, e, company(fmt.Sprintf("tom-%d", next()), orgNumber(1000+next()))).GetName()
}

func noticeOf(t *testing.T, e env, c string) string {
	return mustNotice(t, e, notice("companies/"+c, furlough, 10, day(2026, 3, 2))).GetName()
}

func sessionOf(t *testing.T, e env, c string) string {
	return mustSession(t, e, session("companies/"+c, fmt.Sprintf("s-%d", next()), 4)).GetName()
}

// firstSession is a planned conversation 1 of a fresh company, which can
// be held.
func firstSession(t *testing.T, e env, _ string) string {
	return mustSession(t, e, session(freshCompany(t, e, ""), "samtal-1", 1)).GetName()
}

func err1[T any](_ T, err error) error { return err }

// The matrix: every RPC of the companies service × every role × the
// company principal's own company and another's, over real gRPC through
// the guard, with the audit record each call must leave.
var companiesMatrix = []matrixRow{
	{"CreateCompany", companyName, func(ctx context.Context, c companiesv1.CompaniesServiceClient, _ string) error {
		return err1(c.CreateCompany(ctx, company("", orgNumber(5000+next()))))
	}, onlyStaff},
	{"GetCompany", companyName, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.GetCompany(ctx, &companiesv1.GetCompanyRequest{Name: target}))
	}, staffCouncilAndOwnCompany},
	{"LookupCompany", companyName, func(ctx context.Context, c companiesv1.CompaniesServiceClient, _ string) error {
		return err1(c.LookupCompany(ctx, &companiesv1.LookupCompanyRequest{OrganisationNumber: "556012-5790"}))
	}, staffAndCouncil},
	{"ListCompanies", companyName, func(ctx context.Context, c companiesv1.CompaniesServiceClient, _ string) error {
		return err1(c.ListCompanies(ctx, &companiesv1.ListCompaniesRequest{}))
	}, staffAndCouncil},
	{"UpdateCompany", companyName, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.UpdateCompany(ctx, &companiesv1.UpdateCompanyRequest{Company: &companiesv1.Company{Name: target, EmployeeCount: proto.Int32(int32(900 + next()))},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"employee_count"}}}))
	}, staffAndOwnCompany},
	{"DeleteCompany", freshCompany, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.DeleteCompany(ctx, &companiesv1.DeleteCompanyRequest{Name: target}))
	}, onlyStaff},
	{"CreateNotice", companyName, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.CreateNotice(ctx, notice(target, redundancy, 3, day(2026, 5, 4))))
	}, staffAndOwnCompany},
	{"GetNotice", noticeOf, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.GetNotice(ctx, &companiesv1.GetNoticeRequest{Name: target}))
	}, staffCouncilAndOwnCompany},
	{"ListNotices", companyName, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.ListNotices(ctx, &companiesv1.ListNoticesRequest{Parent: target}))
	}, staffCouncilAndOwnCompany},
	{"DeleteNotice", noticeOf, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.DeleteNotice(ctx, &companiesv1.DeleteNoticeRequest{Name: target}))
	}, onlyStaff},
	{"SummarizeNotices", companyName, func(ctx context.Context, c companiesv1.CompaniesServiceClient, _ string) error {
		return err1(c.SummarizeNotices(ctx, &companiesv1.SummarizeNoticesRequest{Parent: "companies/-", StartDate: day(2026, 1, 1), EndDate: day(2026, 12, 31)}))
	}, aggregates},
	{"CreateCoachingSession", companyName, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.CreateCoachingSession(ctx, session(target, fmt.Sprintf("ny-%d", next()), 2)))
	}, onlyStaff},
	{"GetCoachingSession", sessionOf, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.GetCoachingSession(ctx, &companiesv1.GetCoachingSessionRequest{Name: target}))
	}, staffAndOwnCompany},
	{"ListCoachingSessions", companyName, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.ListCoachingSessions(ctx, &companiesv1.ListCoachingSessionsRequest{Parent: target}))
	}, staffAndOwnCompany},
	{"HoldCoachingSession", firstSession, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.HoldCoachingSession(ctx, &companiesv1.HoldCoachingSessionRequest{Name: target}))
	}, onlyStaff},
	{"CancelCoachingSession", sessionOf, func(ctx context.Context, c companiesv1.CompaniesServiceClient, target string) error {
		return err1(c.CancelCoachingSession(ctx, &companiesv1.CancelCoachingSessionRequest{Name: target, Reason: "Inställt"}))
	}, onlyStaff},
}

// auditRecords are the records on the companies audit stream.
func auditRecords(t *testing.T, rdb redis.UniversalClient) []*accessv1.AuditRecord {
	t.Helper()
	msgs, err := rdb.XRange(ctx, companies.Keyspace.Audit(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*accessv1.AuditRecord, len(msgs))
	for i, m := range msgs {
		out[i] = &accessv1.AuditRecord{}
		raw, _ := m.Values[audit.Field].(string)
		if err := proto.Unmarshal([]byte(raw), out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestPolicyMatrix(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		mustCompany(t, e, company("volvo", "556012-5790"))
		mustCompany(t, e, company("annat", orgNumber(1)))
		methods := map[string]bool{}
		for _, row := range companiesMatrix {
			methods[row.method] = true
			for _, p := range principals {
				exp, listed := row.want[p.label]
				if !listed {
					t.Fatalf("%s: no expectation for %s", row.method, p.label)
				}
				for i, c := range []string{"volvo", "annat"} {
					side := [2]string{"own", "other"}[i]
					if p.role != auth.Company {
						side = c
					}
					t.Run(fmt.Sprintf("%s/%s/%s", row.method, p.label, side), func(t *testing.T) {
						target := row.setup(t, e, c)
						before := len(auditRecords(t, e.rdb))
						e.clock.tick()
						err := row.call(testkit.AsRole(ctx, p.role, p.subject), e.c, target)
						if got := status.Code(err); got != exp[i] {
							t.Fatalf("got %v, want %v", err, exp[i])
						}
						checkAudit(t, e, row, p, before, status.Code(err))
					})
				}
			}
		}
		ms := companiesv1.File_kompetensnav_companies_v1_companies_proto.Services().Get(0).Methods()
		for i := range ms.Len() {
			if name := string(ms.Get(i).Name()); !methods[name] {
				t.Errorf("the matrix has no row for %s", name)
			}
		}
	})
}

// checkAudit: a refused call leaves exactly one denial record, a write
// exactly one write record, a read none; each names who, what and the
// resource.
func checkAudit(t *testing.T, e env, row matrixRow, p principal, before int, got codes.Code) {
	t.Helper()
	recs := auditRecords(t, e.rdb)[before:]
	rule := companies.Policy.Rules[row.method]
	switch {
	case got == ok && !rule.Write:
		if len(recs) != 0 {
			t.Fatalf("a read left audit records: %v", recs)
		}
		return
	case len(recs) != 1:
		t.Fatalf("%d audit records for one call (%v), want 1: %v", len(recs), got, recs)
	}
	r := recs[0]
	wantKind := accessv1.AuditRecord_KIND_WRITE
	if got != ok {
		wantKind = accessv1.AuditRecord_KIND_DENIAL
	}
	wantID := "test/" + strings.ToLower(strings.TrimPrefix(p.role.String(), "ROLE_"))
	if r.GetKind() != wantKind || r.GetPrincipal() != wantID || r.GetRole() != p.role || r.GetPrincipalSubject() != p.subject ||
		r.GetService() != "companies" || r.GetMethod() != "kompetensnav.companies.v1.CompaniesService/"+row.method ||
		r.GetOutcome() != audit.OutcomeName(got) || r.GetTime() == nil {
		t.Fatalf("audit record %v", r)
	}
	if (rule.Resource != "" || (rule.Write && got == ok)) && r.GetResource() == "" {
		t.Fatalf("audit record names no resource: %v", r)
	}
}

// A company principal listing every company's notices (companies/-) gets
// its own and nothing else; naming another company's is refused, whether
// it exists or not.
func TestCompanySeesOnlyItsOwn(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		volvo := mustCompany(t, e, company("volvo", "556012-5790"))
		annat := mustCompany(t, e, company("annat", orgNumber(1)))
		own := mustNotice(t, e, notice(volvo.GetName(), furlough, 10, day(2026, 3, 2)))
		mustNotice(t, e, notice(annat.GetName(), furlough, 10, day(2026, 3, 2)))
		mustNotice(t, e, notice(annat.GetName(), redundancy, 10, day(2026, 3, 3)))

		asVolvo := testkit.AsRole(ctx, auth.Company, "companies/volvo")
		list, err := e.c.ListNotices(asVolvo, &companiesv1.ListNoticesRequest{Parent: "companies/-"})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.GetNotices()) != 1 || list.GetNotices()[0].GetName() != own.GetName() || list.GetTotalSize() != 1 {
			t.Fatalf("company sees %v", list)
		}
		all, err := e.c.ListNotices(ctx, &companiesv1.ListNoticesRequest{Parent: "companies/-"})
		if err != nil || len(all.GetNotices()) != 3 {
			t.Fatalf("staff sees %v (%v)", all, err)
		}
		_, err = e.c.GetCompany(asVolvo, &companiesv1.GetCompanyRequest{Name: "companies/nowhere"})
		wantCode(t, err, codes.PermissionDenied)
		_, err = e.c.GetNotice(asVolvo, &companiesv1.GetNoticeRequest{Name: "companies/annat/notices/x"})
		wantCode(t, err, codes.PermissionDenied)
		// Its own company, notices and coaching it may read.
		if _, err := e.c.GetCompany(asVolvo, &companiesv1.GetCompanyRequest{Name: volvo.GetName()}); err != nil {
			t.Fatal(err)
		}
		// A company key bound to nothing is refused everything scoped.
		_, err = e.c.GetCompany(testkit.AsRole(ctx, auth.Company, ""), &companiesv1.GetCompanyRequest{Name: volvo.GetName()})
		wantCode(t, err, codes.PermissionDenied)
	})
}
