package procurement_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/kompetensnav/kompetensnav/services/procurement"
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

// The provider principal is bound to providers/a: its "own" objects are
// offers made to a and bids as a; "other" ones are b's.
var principals = []principal{
	{"staff", auth.Staff, ""},
	{"council", auth.Council, "councils/teknik"},
	{"company", auth.Company, "companies/volvo-cars"},
	{"provider", auth.Provider, "providers/a"},
	{"partner", auth.Partner, ""},
	{"auditor", auth.Auditor, ""},
}

const (
	ok     = codes.OK
	denied = codes.PermissionDenied
)

// want is a row's expected code per principal, on the provider's own
// object and on another's; for the other roles both are the same.
type want map[string][2]codes.Code

func same(c codes.Code) [2]codes.Code { return [2]codes.Code{c, c} }

var (
	onlyStaff = want{"staff": same(ok), "council": same(denied), "company": same(denied),
		"provider": same(denied), "partner": same(denied), "auditor": same(denied)}
	staffAndOwnProvider = want{"staff": same(ok), "council": same(denied), "company": same(denied),
		"provider": {ok, denied}, "partner": same(denied), "auditor": same(denied)}
	everyone = want{"staff": same(ok), "council": same(ok), "company": same(ok),
		"provider": same(ok), "partner": same(ok), "auditor": same(ok)}
	openData = want{"staff": same(ok), "council": same(denied), "company": same(denied),
		"provider": same(denied), "partner": same(ok), "auditor": same(ok)}
)

// target is what a call acts on: a resource and, for calls a provider
// makes as itself, the provider it names ("providers/a" on the own side,
// "providers/b" on the other).
type target struct{ name, provider string }

type matrixRow struct {
	method string
	setup  func(t *testing.T, e env, provider string) target
	call   func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error
	want   want
}

var seq atomic.Int64

func next() string { return fmt.Sprintf("m%d", seq.Add(1)) }

// orgNo is a fresh organisation number with a valid check digit.
func orgNo() string {
	nine := fmt.Sprintf("5562%05d", seq.Add(1))
	sum := 0
	for i, ch := range nine {
		d := int(ch-'0') * (2 - i%2)
		sum += d/10 + d%10
	}
	return fmt.Sprintf("%s-%s%d", nine[:6], nine[6:], (10-sum%10)%10)
}

func err1[T any](_ T, err error) error { return err }

func named(name string) func(*testing.T, env, string) target {
	return func(*testing.T, env, string) target { return target{name: name} }
}

func freshProvider(t *testing.T, e env, _ string) target {
	return target{name: mustProvider(t, e, providerReq(next(), orgNo())).GetName()}
}

func draftAgreement(t *testing.T, e env, _ string) target {
	id := next()
	req := agreementReq(id, rank, 1000)
	if _, err := e.c.CreateFrameworkAgreement(ctx, req); err != nil {
		t.Fatal(err)
	}
	return target{name: "frameworkAgreements/" + id}
}

// offeredTo is a call-off by rank offered to provider (a is ranked first;
// b is offered it once a declined).
func offeredTo(t *testing.T, e env, provider string) target {
	t.Helper()
	c := mustCallOff(t, e, callOffReq(next(), "frameworkAgreements/rank", "svets", approvedNeed(e), 1000))
	if provider == "providers/b" {
		if _, err := decline(e, c.GetName(), ""); err != nil {
			t.Fatal(err)
		}
	}
	return target{name: c.GetName(), provider: provider}
}

// seenBy is a call-off provider a was offered (own side) or one a never
// was (the other side: the assessment lot's, offered to the test centre).
func seenBy(t *testing.T, e env, provider string) target {
	t.Helper()
	if provider == "providers/a" {
		return offeredTo(t, e, provider)
	}
	c := mustCallOff(t, e, callOffReq(next(), "frameworkAgreements/rank", "validering", approvedNeed(e), 1000))
	return target{name: c.GetName()}
}

// tenderingFor is a mini-competition; with allBid every provider of the
// lot has bid (so it can be awarded at once).
func tenderingFor(allBid bool) func(*testing.T, env, string) target {
	return func(t *testing.T, e env, provider string) target {
		t.Helper()
		req := callOffReq(next(), "frameworkAgreements/mini", "svets", approvedNeed(e), 1000)
		req.CallOff.BidDeadline = ts(start.Add(240 * time.Hour))
		c := mustCallOff(t, e, req)
		if allBid {
			for _, p := range []string{"providers/a", "providers/b", "providers/c"} {
				if _, err := e.c.CreateBid(ctx, bidReq(c.GetName(), p, 900, 50)); err != nil {
					t.Fatal(err)
				}
			}
		}
		return target{name: c.GetName(), provider: provider}
	}
}

func providerOnly(_ *testing.T, _ env, provider string) target { return target{provider: provider} }

// The matrix: every RPC × every role × the provider's own object and
// another's, over real gRPC through the guard, with the audit record each
// call must leave.
var procurementMatrix = []matrixRow{
	{"CreateProvider", named(""), func(ctx context.Context, c procurementv1.ProcurementServiceClient, _ target) error {
		return err1(c.CreateProvider(ctx, providerReq(next(), orgNo())))
	}, onlyStaff},
	{"GetProvider", named("providers/a"), func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.GetProvider(ctx, &procurementv1.GetProviderRequest{Name: tg.name}))
	}, everyone},
	{"ListProviders", named(""), func(ctx context.Context, c procurementv1.ProcurementServiceClient, _ target) error {
		return err1(c.ListProviders(ctx, &procurementv1.ListProvidersRequest{Filter: `kinds:"KIND_TEST_CENTRE"`}))
	}, everyone},
	{"UpdateProvider", freshProvider, func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.UpdateProvider(ctx, &procurementv1.UpdateProviderRequest{Provider: &procurementv1.Provider{Name: tg.name, DisplayName: "Nytt namn"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}}))
	}, onlyStaff},
	{"DeleteProvider", freshProvider, func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.DeleteProvider(ctx, &procurementv1.DeleteProviderRequest{Name: tg.name}))
	}, onlyStaff},

	{"CreateFrameworkAgreement", named(""), func(ctx context.Context, c procurementv1.ProcurementServiceClient, _ target) error {
		return err1(c.CreateFrameworkAgreement(ctx, agreementReq(next(), rank, 1000)))
	}, onlyStaff},
	{"GetFrameworkAgreement", named("frameworkAgreements/rank"), func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.GetFrameworkAgreement(ctx, &procurementv1.GetFrameworkAgreementRequest{Name: tg.name}))
	}, everyone},
	{"ListFrameworkAgreements", named(""), func(ctx context.Context, c procurementv1.ProcurementServiceClient, _ target) error {
		return err1(c.ListFrameworkAgreements(ctx, &procurementv1.ListFrameworkAgreementsRequest{}))
	}, everyone},
	{"UpdateFrameworkAgreement", draftAgreement, func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.UpdateFrameworkAgreement(ctx, &procurementv1.UpdateFrameworkAgreementRequest{
			FrameworkAgreement: &procurementv1.FrameworkAgreement{Name: tg.name, Title: "Nytt"},
			UpdateMask:         &fieldmaskpb.FieldMask{Paths: []string{"title"}}}))
	}, onlyStaff},
	{"ActivateFrameworkAgreement", draftAgreement, func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.ActivateFrameworkAgreement(ctx, &procurementv1.ActivateFrameworkAgreementRequest{Name: tg.name}))
	}, onlyStaff},
	{"TerminateFrameworkAgreement", draftAgreement, func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.TerminateFrameworkAgreement(ctx, &procurementv1.TerminateFrameworkAgreementRequest{Name: tg.name, Reason: "Avbrutet"}))
	}, onlyStaff},
	{"ExportFrameworkAgreementOcds", named("frameworkAgreements/rank"), func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.ExportFrameworkAgreementOcds(ctx, &procurementv1.ExportFrameworkAgreementOcdsRequest{Name: tg.name}))
	}, openData},

	{"CreateCallOff", named(""), nil, onlyStaff}, // call set in TestPolicyMatrix (it needs an approved need)
	{"GetCallOff", seenBy, func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.GetCallOff(ctx, &procurementv1.GetCallOffRequest{Name: tg.name}))
	}, staffAndOwnProvider},
	{"ListCallOffs", providerOnly, func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.ListCallOffs(ctx, &procurementv1.ListCallOffsRequest{Provider: tg.provider}))
	}, staffAndOwnProvider},
	{"AcceptCallOff", offeredTo, func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.AcceptCallOff(ctx, &procurementv1.AcceptCallOffRequest{Name: tg.name, Provider: tg.provider}))
	}, staffAndOwnProvider},
	{"DeclineCallOff", offeredTo, func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.DeclineCallOff(ctx, &procurementv1.DeclineCallOffRequest{Name: tg.name, Provider: tg.provider}))
	}, staffAndOwnProvider},
	{"AwardCallOff", tenderingFor(true), func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.AwardCallOff(ctx, &procurementv1.AwardCallOffRequest{Name: tg.name}))
	}, onlyStaff},
	{"CancelCallOff", offeredTo, func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.CancelCallOff(ctx, &procurementv1.CancelCallOffRequest{Name: tg.name, Reason: "Behovet föll bort"}))
	}, onlyStaff},
	{"CreateBid", tenderingFor(false), func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.CreateBid(ctx, bidReq(tg.name, tg.provider, 900, 70)))
	}, staffAndOwnProvider},
	{"ListBids", tenderingFor(true), func(ctx context.Context, c procurementv1.ProcurementServiceClient, tg target) error {
		return err1(c.ListBids(ctx, &procurementv1.ListBidsRequest{Parent: tg.name, Provider: tg.provider}))
	}, staffAndOwnProvider},
	{"ListQueuedNeeds", named(""), func(ctx context.Context, c procurementv1.ProcurementServiceClient, _ target) error {
		return err1(c.ListQueuedNeeds(ctx, &procurementv1.ListQueuedNeedsRequest{}))
	}, onlyStaff},
}

func auditRecords(t *testing.T, rdb redis.UniversalClient) []*accessv1.AuditRecord {
	t.Helper()
	msgs, err := rdb.XRange(ctx, procurement.Keyspace.Audit(), "-", "+").Result()
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
		activeAgreement(t, e, "rank", rank, 1_000_000_000)
		activeAgreement(t, e, "mini", mini, 1_000_000_000)
		methods := map[string]bool{}
		for _, row := range procurementMatrix {
			methods[row.method] = true
			if row.call == nil { // CreateCallOff
				row.call = func(ctx context.Context, c procurementv1.ProcurementServiceClient, _ target) error {
					return err1(c.CreateCallOff(ctx, callOffReq(next(), "frameworkAgreements/rank", "svets", approvedNeed(e), 1000)))
				}
			}
			for _, p := range principals {
				exp, listed := row.want[p.label]
				if !listed {
					t.Fatalf("%s: no expectation for %s", row.method, p.label)
				}
				for i, provider := range []string{"providers/a", "providers/b"} {
					side := [2]string{"own", "other"}[i]
					t.Run(fmt.Sprintf("%s/%s/%s", row.method, p.label, side), func(t *testing.T) {
						tg := row.setup(t, e, provider)
						before := len(auditRecords(t, e.rdb))
						e.clock.tick()
						err := row.call(testkit.AsRole(ctx, p.role, p.subject), e.c, tg)
						if got := status.Code(err); got != exp[i] {
							t.Fatalf("got %v, want %v", err, exp[i])
						}
						checkAudit(t, e, row, p, before, status.Code(err))
					})
				}
			}
		}
		ms := procurementv1.File_kompetensnav_procurement_v1_procurement_proto.Services().Get(0).Methods()
		for i := range ms.Len() {
			if name := string(ms.Get(i).Name()); !methods[name] {
				t.Errorf("the matrix has no row for %s", name)
			}
		}
	})
}

// checkAudit: a refused call leaves exactly one denial record, a write
// exactly one write record, a read none.
func checkAudit(t *testing.T, e env, row matrixRow, p principal, before int, got codes.Code) {
	t.Helper()
	recs := auditRecords(t, e.rdb)[before:]
	read := strings.HasPrefix(row.method, "Get") || strings.HasPrefix(row.method, "List") || strings.HasPrefix(row.method, "Export")
	switch {
	case got == ok && read:
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
		r.GetService() != "procurement" || r.GetMethod() != "kompetensnav.procurement.v1.ProcurementService/"+row.method ||
		r.GetOutcome() != audit.OutcomeName(got) || r.GetTime() == nil {
		t.Fatalf("audit record %v", r)
	}
	anonymous := strings.HasPrefix(row.method, "List") || (strings.HasPrefix(row.method, "Create") && row.method != "CreateBid" && got != ok)
	if !anonymous && r.GetResource() == "" {
		t.Fatalf("audit record names no resource: %v", r)
	}
}

// A provider listing call-offs sees those it was offered or invited to,
// and must ask for its own.
func TestProviderSeesOnlyItsOwnCallOffs(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		activeAgreement(t, e, "rank", rank, 1_000_000)
		toA := offeredTo(t, e, "providers/a")
		offeredTo(t, e, "providers/b") // declined by a, then offered to b: a was invited
		other := mustCallOff(t, e, callOffReq(next(), "frameworkAgreements/rank", "validering", approvedNeed(e), 1000))
		asA := testkit.AsRole(ctx, auth.Provider, "providers/a")
		list, err := e.c.ListCallOffs(asA, &procurementv1.ListCallOffsRequest{Provider: "providers/-"})
		if err != nil || len(list.GetCallOffs()) != 2 || list.GetTotalSize() != 2 {
			t.Fatalf("a sees %v (%v)", list, err)
		}
		// Without naming itself it is refused, not shown everything.
		_, err = e.c.ListCallOffs(asA, &procurementv1.ListCallOffsRequest{})
		wantCode(t, err, codes.PermissionDenied)
		if _, err := e.c.GetCallOff(asA, &procurementv1.GetCallOffRequest{Name: toA.name}); err != nil {
			t.Fatal(err)
		}
		// Another's, and one that does not exist, are refused alike.
		_, err1 := e.c.GetCallOff(asA, &procurementv1.GetCallOffRequest{Name: other.GetName()})
		_, err2 := e.c.GetCallOff(asA, &procurementv1.GetCallOffRequest{Name: "callOffs/finns-inte"})
		wantCode(t, err1, codes.PermissionDenied)
		wantCode(t, err2, codes.PermissionDenied)
	})
}
