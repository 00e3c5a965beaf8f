package councils_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
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

// The council principal is bound to councils/fordon: "own" objects are
// fordon's, "other" ones handel's. The other bound roles are bound to
// resources of services that do not exist yet, so every council object is
// someone else's to them.
var principals = []principal{
	{"staff", auth.Staff, ""},
	{"council", auth.Council, "councils/fordon"},
	{"company", auth.Company, "companies/volvo-cars"},
	{"provider", auth.Provider, "providers/lernia"},
	{"partner", auth.Partner, ""},
	{"auditor", auth.Auditor, ""},
}

const (
	ok     = codes.OK
	denied = codes.PermissionDenied
)

// want is a row's expected code per principal, for the call on the
// principal's own object and on another's ([2]codes.Code{own, other}).
// Only a bound role can tell own from other; for the rest both are the same.
type want map[string][2]codes.Code

func same(c codes.Code) [2]codes.Code { return [2]codes.Code{c, c} }

// onlyStaff, staffAndOwnCouncil and everyone are the three shapes of row.
var (
	onlyStaff = want{"staff": same(ok), "council": same(denied), "company": same(denied),
		"provider": same(denied), "partner": same(denied), "auditor": same(denied)}
	staffAndOwnCouncil = want{"staff": same(ok), "council": {ok, denied}, "company": same(denied),
		"provider": same(denied), "partner": same(denied), "auditor": same(denied)}
	everyone = want{"staff": same(ok), "council": same(ok), "company": same(ok),
		"provider": same(ok), "partner": same(ok), "auditor": same(ok)}
	aggregatesAndOwnCouncil = want{"staff": same(ok), "council": {ok, denied}, "company": same(denied),
		"provider": same(denied), "partner": same(ok), "auditor": same(ok)}
)

// matrixRow is one RPC: setup makes (as staff) what the call needs in a
// council and returns the name the call acts on; call makes it.
type matrixRow struct {
	method string
	setup  func(t *testing.T, e env, council string) string
	call   func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error
	want   want
}

// needIn creates a need of council and moves it through verbs (as staff).
func needIn(verbs ...string) func(t *testing.T, e env, council string) string {
	return func(t *testing.T, e env, council string) string {
		t.Helper()
		n := mustNeed(t, e, need("councils/"+council))
		for _, v := range verbs {
			var err error
			switch v {
			case "submit":
				_, err = e.c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: n.GetName()})
			case "approve":
				_, err = e.c.ApproveNeed(ctx, &councilsv1.ApproveNeedRequest{Name: n.GetName()})
			case "procure":
				_, err = e.c.StartNeedProcurement(ctx, &councilsv1.StartNeedProcurementRequest{Name: n.GetName()})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return n.GetName()
	}
}

func councilName(_ *testing.T, _ env, council string) string { return "councils/" + council }

var councilSeq int

// freshCouncil makes a council with no needs (so it can be deleted).
func freshCouncil(t *testing.T, e env, _ string) string {
	councilSeq++
	return mustCouncil(t, e, fmt.Sprintf("tom-%d", councilSeq), commonv1.Sector_SECTOR_OTHER).GetName()
}

func err1[T any](_ T, err error) error { return err }

// The matrix: every RPC of the councils service × every role × its own
// object and another's, over real gRPC through the guard, with the audit
// record each call must leave. A service added later puts its own table
// next to its own policy, in the same shape.
var councilsMatrix = []matrixRow{
	{"CreateCouncil", councilName, func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.CreateCouncil(ctx, &councilsv1.CreateCouncilRequest{Council: council("x", commonv1.Sector_SECTOR_RETAIL).GetCouncil()}))
	}, onlyStaff},
	{"GetCouncil", councilName, func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: target}))
	}, everyone},
	{"ListCouncils", councilName, func(ctx context.Context, c councilsv1.CouncilsServiceClient, _ string) error {
		return err1(c.ListCouncils(ctx, &councilsv1.ListCouncilsRequest{}))
	}, everyone},
	{"UpdateCouncil", councilName, func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: &councilsv1.SectorCouncil{Name: target, DisplayName: "Nytt namn"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}}))
	}, onlyStaff},
	{"DeleteCouncil", freshCouncil, func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.DeleteCouncil(ctx, &councilsv1.DeleteCouncilRequest{Name: target}))
	}, onlyStaff},
	{"CreateNeed", councilName, func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.CreateNeed(ctx, need(target)))
	}, staffAndOwnCouncil},
	{"GetNeed", needIn(), func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.GetNeed(ctx, &councilsv1.GetNeedRequest{Name: target}))
	}, staffAndOwnCouncil},
	{"ListNeeds", councilName, func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: target}))
	}, staffAndOwnCouncil},
	{"UpdateNeed", needIn(), func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.UpdateNeed(ctx, &councilsv1.UpdateNeedRequest{Need: &councilsv1.CompetenceNeed{Name: target, Headcount: 7},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"headcount"}}}))
	}, staffAndOwnCouncil},
	{"SubmitNeed", needIn(), func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: target}))
	}, staffAndOwnCouncil},
	{"CloseNeed", needIn("submit"), func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.CloseNeed(ctx, &councilsv1.CloseNeedRequest{Name: target, Reason: "dras tillbaka"}))
	}, staffAndOwnCouncil},
	{"ApproveNeed", needIn("submit"), func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.ApproveNeed(ctx, &councilsv1.ApproveNeedRequest{Name: target}))
	}, onlyStaff},
	{"RejectNeed", needIn("submit"), func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.RejectNeed(ctx, &councilsv1.RejectNeedRequest{Name: target, Reason: "täcks redan"}))
	}, onlyStaff},
	{"StartNeedProcurement", needIn("submit", "approve"), func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.StartNeedProcurement(ctx, &councilsv1.StartNeedProcurementRequest{Name: target}))
	}, onlyStaff},
	{"FulfilNeed", needIn("submit", "approve", "procure"), func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.FulfilNeed(ctx, &councilsv1.FulfilNeedRequest{Name: target}))
	}, onlyStaff},
	{"GetDemandSignal", councilName, func(ctx context.Context, c councilsv1.CouncilsServiceClient, target string) error {
		return err1(c.GetDemandSignal(ctx, &councilsv1.GetDemandSignalRequest{Name: target}))
	}, aggregatesAndOwnCouncil},
}

// auditRecords are the records on the councils audit stream.
func auditRecords(t *testing.T, rdb redis.UniversalClient) []*accessv1.AuditRecord {
	t.Helper()
	msgs, err := rdb.XRange(ctx, councils.Keyspace.Audit(), "-", "+").Result()
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
		mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		mustCouncil(t, e, "handel", commonv1.Sector_SECTOR_RETAIL)
		methods := map[string]bool{}
		for _, row := range councilsMatrix {
			methods[row.method] = true
			for _, p := range principals {
				exp, listed := row.want[p.label]
				if !listed {
					t.Fatalf("%s: no expectation for %s", row.method, p.label)
				}
				for i, council := range []string{"fordon", "handel"} {
					side := [2]string{"own", "other"}[i]
					if p.role != auth.Council {
						side = council
					}
					t.Run(fmt.Sprintf("%s/%s/%s", row.method, p.label, side), func(t *testing.T) {
						target := row.setup(t, e, council)
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
		// Every RPC of the service has a row.
		ms := councilsv1.File_kompetensnav_councils_v1_councils_proto.Services().Get(0).Methods()
		for i := range ms.Len() {
			if name := string(ms.Get(i).Name()); !methods[name] {
				t.Errorf("the matrix has no row for %s", name)
			}
		}
	})
}

// checkAudit: a refused call leaves exactly one denial record, a write
// exactly one write record, a read none; each names who, what and the
// resource, and never more than that.
func checkAudit(t *testing.T, e env, row matrixRow, p principal, before int, got codes.Code) {
	t.Helper()
	recs := auditRecords(t, e.rdb)[before:]
	read := strings.HasPrefix(row.method, "Get") || strings.HasPrefix(row.method, "List")
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
		r.GetService() != "councils" || r.GetMethod() != "kompetensnav.councils.v1.CouncilsService/"+row.method ||
		r.GetOutcome() != audit.OutcomeName(got) || r.GetTime() == nil {
		t.Fatalf("audit record %v", r)
	}
	if row.method != "CreateCouncil" && r.GetResource() == "" {
		t.Fatalf("audit record names no resource: %v", r)
	}
}

// A council principal listing every council's needs (councils/-) gets
// its own and nothing else; naming another council's is refused.
func TestCouncilSeesOnlyItsOwnNeeds(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		mustCouncil(t, e, "handel", commonv1.Sector_SECTOR_RETAIL)
		own := mustNeed(t, e, need("councils/fordon"))
		mustNeed(t, e, need("councils/handel"))
		mustNeed(t, e, need("councils/handel"))

		asFordon := testkit.AsRole(ctx, auth.Council, "councils/fordon")
		list, err := e.c.ListNeeds(asFordon, &councilsv1.ListNeedsRequest{Parent: "councils/-"})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.GetNeeds()) != 1 || list.GetNeeds()[0].GetName() != own.GetName() || list.GetTotalSize() != 1 {
			t.Fatalf("council sees %v", list)
		}
		// Staff sees all three, so the narrowing is the policy's doing.
		all, err := e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: "councils/-"})
		if err != nil || len(all.GetNeeds()) != 3 {
			t.Fatalf("staff sees %v (%v)", all, err)
		}
		_, err = e.c.ListNeeds(asFordon, &councilsv1.ListNeedsRequest{Parent: "councils/handel"})
		wantCode(t, err, codes.PermissionDenied)
		// Existence is not revealed: a council that does not exist is
		// refused the same way.
		_, err = e.c.GetNeed(asFordon, &councilsv1.GetNeedRequest{Name: "councils/nope/needs/x"})
		wantCode(t, err, codes.PermissionDenied)
		// Credentials come before everything: a malformed request without
		// them is UNAUTHENTICATED, not INVALID_ARGUMENT.
		_, err = e.c.GetCouncil(testkit.As(ctx, ""), &councilsv1.GetCouncilRequest{Name: "bad name"})
		wantCode(t, err, codes.Unauthenticated)
		// A council key bound to nothing is refused everything scoped.
		_, err = e.c.ListNeeds(testkit.AsRole(ctx, auth.Council, ""), &councilsv1.ListNeedsRequest{Parent: "councils/-"})
		wantCode(t, err, codes.PermissionDenied)
	})
}

// Concurrent updates of one council make store.Update retry its Tx; each
// call still leaves exactly one write record, in the same step as its write.
func TestEveryWriteLeavesExactlyOneRecordDespiteRetries(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		before := len(auditRecords(t, e.rdb))
		const n = 20
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				callCtx := metadata.AppendToOutgoingContext(ctx, "x-request-id", fmt.Sprintf("upd-%02d", i))
				_, err := e.c.UpdateCouncil(callCtx, &councilsv1.UpdateCouncilRequest{
					Council:    &councilsv1.SectorCouncil{Name: "councils/fordon", DisplayName: fmt.Sprintf("Fordonsrådet %d", i)},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		recs := auditRecords(t, e.rdb)[before:]
		ids := map[string]int{}
		for _, r := range recs {
			ids[r.GetRequestId()]++
			if r.GetKind() != accessv1.AuditRecord_KIND_WRITE || r.GetResource() != "councils/fordon" {
				t.Fatalf("record %v", r)
			}
		}
		if len(recs) != n || len(ids) != n {
			t.Fatalf("%d records for %d writes (%d request ids): %v", len(recs), n, len(ids), ids)
		}
		// And as many events as records: the record rides with the write.
		events, _ := e.rdb.XLen(ctx, councils.Keyspace.Events()).Result()
		if events != int64(n+1) {
			t.Fatalf("%d events for %d writes and a create", events, n)
		}
	})
}
