package enrolment_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// principal is one column of the matrix. The provider is bound to
// providers/lernia: its "own" objects belong to an offering lernia runs
// (from callOffs/svets), "other" ones to folkuniversitetet's (callOffs/cnc).
type principal struct {
	label   string
	role    auth.Role
	subject string
}

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

// want is a row's expected code per principal, on its own object and on
// another's.
type want map[string][2]codes.Code

func same(c codes.Code) [2]codes.Code { return [2]codes.Code{c, c} }

var (
	onlyStaff = want{"staff": same(ok), "council": same(denied), "company": same(denied),
		"provider": same(denied), "partner": same(denied), "auditor": same(denied)}
	staffAndOwnProvider = want{"staff": same(ok), "council": same(denied), "company": same(denied),
		"provider": {ok, denied}, "partner": same(denied), "auditor": same(denied)}
	everyone = want{"staff": same(ok), "council": same(ok), "company": same(ok),
		"provider": same(ok), "partner": same(ok), "auditor": same(ok)}
)

// world is what the matrix's calls act on.
type world struct {
	e       env
	project string
	own     string // an OPEN offering of providers/lernia
	other   string // an OPEN offering of providers/folkuniversitetet
	seq     int
}

func (w *world) next() int { w.seq++; return w.seq }

// offering makes a fresh offering of the side's provider, moved on to state.
func (w *world) offering(t *testing.T, side int, to enrolmentv1.Offering_State) string {
	t.Helper()
	req := svets(fmt.Sprintf("o%03d", w.next()), w.project, 10)
	if side == 1 {
		req.Offering.CallOff, req.Offering.Sessions = "callOffs/cnc", req.Offering.Sessions[:1]
	}
	o := mustOffering(t, w.e, req, to != enrolmentv1.Offering_STATE_PLANNED)
	for _, step := range []struct {
		state enrolmentv1.Offering_State
		call  func() error
	}{
		{enrolmentv1.Offering_STATE_RUNNING, func() error {
			_, err := w.e.c.StartOffering(ctx, &enrolmentv1.StartOfferingRequest{Name: o.GetName()})
			return err
		}},
	} {
		if to == step.state {
			if err := step.call(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return o.GetName()
}

func (w *world) participant(t *testing.T) *enrolmentv1.Participant {
	t.Helper()
	return mustParticipant(t, w.e, person(nthNumber(1000+w.next())))
}

func (w *world) enrolment(t *testing.T, offering string) string {
	t.Helper()
	en, err := enrol(w.e, offering, w.participant(t).GetName())
	if err != nil {
		t.Fatal(err)
	}
	return en.GetName()
}

func (w *world) side(side int) string { return [2]string{w.own, w.other}[side] }

// matrixRow is one RPC: setup makes (as staff) what the call needs and
// returns what it acts on; sensitive says a successful response holds
// personal data (a staff read of it is recorded).
type matrixRow struct {
	method    string
	setup     func(t *testing.T, w *world, side int) string
	call      func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, target string) error
	want      want
	sensitive bool
}

func none(*testing.T, *world, int) string { return "" }

func err1[T any](_ T, err error) error { return err }

var matrix = []matrixRow{
	{"CreateProject", func(_ *testing.T, w *world, _ int) string { return fmt.Sprintf("p%03d", w.next()) },
		func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, id string) error {
			return err1(c.CreateProject(ctx, vastkraft(id)))
		}, onlyStaff, false},
	{"GetProject", func(_ *testing.T, w *world, _ int) string { return w.project },
		func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
			return err1(c.GetProject(ctx, &enrolmentv1.GetProjectRequest{Name: name}))
		}, everyone, false},
	{"ListProjects", none, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, _ string) error {
		return err1(c.ListProjects(ctx, &enrolmentv1.ListProjectsRequest{}))
	}, everyone, false},
	{"UpdateProject", func(_ *testing.T, w *world, _ int) string { return fmt.Sprintf("%s|%d", w.project, w.next()) },
		func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, target string) error {
			name, n, _ := strings.Cut(target, "|")
			return err1(c.UpdateProject(ctx, &enrolmentv1.UpdateProjectRequest{Project: &enrolmentv1.Project{Name: name, DisplayName: "VästKraft " + n},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}}))
		}, onlyStaff, false},
	{"CloseProject", func(t *testing.T, w *world, _ int) string {
		return mustProject(t, w.e, vastkraft(fmt.Sprintf("p%03d", w.next()))).GetName()
	}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
		return err1(c.CloseProject(ctx, &enrolmentv1.CloseProjectRequest{Name: name}))
	}, onlyStaff, false},
	{"CreateOffering", func(_ *testing.T, w *world, _ int) string { return fmt.Sprintf("o%03d", w.next()) },
		func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, id string) error {
			return err1(c.CreateOffering(ctx, svets(id, "projects/vk", 10)))
		}, onlyStaff, false},
	{"GetOffering", func(_ *testing.T, w *world, side int) string { return w.side(side) },
		func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
			return err1(c.GetOffering(ctx, &enrolmentv1.GetOfferingRequest{Name: name}))
		}, everyone, false},
	{"ListOfferings", none, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, _ string) error {
		return err1(c.ListOfferings(ctx, &enrolmentv1.ListOfferingsRequest{}))
	}, everyone, false},
	{"UpdateOffering", func(t *testing.T, w *world, side int) string {
		return w.offering(t, side, enrolmentv1.Offering_STATE_PLANNED)
	}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
		return err1(c.UpdateOffering(ctx, &enrolmentv1.UpdateOfferingRequest{Offering: &enrolmentv1.Offering{Name: name, Capacity: 12}}))
	}, onlyStaff, false},
	{"OpenOffering", func(t *testing.T, w *world, side int) string {
		return w.offering(t, side, enrolmentv1.Offering_STATE_PLANNED)
	}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
		return err1(c.OpenOffering(ctx, &enrolmentv1.OpenOfferingRequest{Name: name}))
	}, onlyStaff, false},
	{"StartOffering", func(t *testing.T, w *world, side int) string {
		return w.offering(t, side, enrolmentv1.Offering_STATE_OPEN)
	}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
		return err1(c.StartOffering(ctx, &enrolmentv1.StartOfferingRequest{Name: name}))
	}, onlyStaff, false},
	{"FinishOffering", func(t *testing.T, w *world, side int) string {
		return w.offering(t, side, enrolmentv1.Offering_STATE_RUNNING)
	}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
		return err1(c.FinishOffering(ctx, &enrolmentv1.FinishOfferingRequest{Name: name}))
	}, onlyStaff, false},
	{"CancelOffering", func(t *testing.T, w *world, side int) string {
		return w.offering(t, side, enrolmentv1.Offering_STATE_PLANNED)
	}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
		return err1(c.CancelOffering(ctx, &enrolmentv1.CancelOfferingRequest{Name: name, Reason: "Inställd"}))
	}, onlyStaff, false},
	{"CreateParticipant", func(_ *testing.T, w *world, _ int) string { return nthNumber(1000 + w.next()) },
		func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, pnr string) error {
			return err1(c.CreateParticipant(ctx, &enrolmentv1.CreateParticipantRequest{Participant: person(pnr)}))
		}, onlyStaff, true},
	{"GetParticipant", func(t *testing.T, w *world, _ int) string { return w.participant(t).GetName() },
		func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
			return err1(c.GetParticipant(ctx, &enrolmentv1.GetParticipantRequest{Name: name}))
		}, onlyStaff, true},
	{"ListParticipants", none, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, _ string) error {
		return err1(c.ListParticipants(ctx, &enrolmentv1.ListParticipantsRequest{}))
	}, onlyStaff, true},
	{"UpdateParticipant", func(t *testing.T, w *world, _ int) string { return w.participant(t).GetName() },
		func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
			return err1(c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{Participant: &enrolmentv1.Participant{Name: name, Municipality: "1481"}}))
		}, onlyStaff, true},
	{"LookupParticipant", func(t *testing.T, w *world, _ int) string {
		p := person(nthNumber(1000 + w.next()))
		mustParticipant(t, w.e, p)
		return p.GetPersonalIdentityNumber()
	}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, pnr string) error {
		return err1(c.LookupParticipant(ctx, &enrolmentv1.LookupParticipantRequest{PersonalIdentityNumber: pnr}))
	}, onlyStaff, true},
	{"CreateEnrolment", func(t *testing.T, w *world, side int) string {
		return w.side(side) + "|" + w.participant(t).GetName()
	}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, target string) error {
		o, p, _ := strings.Cut(target, "|")
		return err1(c.CreateEnrolment(ctx, &enrolmentv1.CreateEnrolmentRequest{Parent: o, Enrolment: &enrolmentv1.Enrolment{Participant: p}}))
	}, onlyStaff, false},
	{"GetEnrolment", func(t *testing.T, w *world, side int) string { return w.enrolment(t, w.side(side)) },
		func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
			return err1(c.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: name}))
		}, staffAndOwnProvider, false},
	{"ListEnrolments", func(_ *testing.T, w *world, side int) string { return w.side(side) },
		func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
			return err1(c.ListEnrolments(ctx, &enrolmentv1.ListEnrolmentsRequest{Parent: name}))
		}, staffAndOwnProvider, false},
	{"WithdrawEnrolment", func(t *testing.T, w *world, side int) string {
		return w.enrolment(t, w.offering(t, side, enrolmentv1.Offering_STATE_OPEN))
	}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
		return err1(c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: name, Reason: "Nytt jobb"}))
	}, onlyStaff, true},
	{"ListParticipantEnrolments", func(t *testing.T, w *world, side int) string {
		en := w.enrolment(t, w.side(side))
		got, err := w.e.c.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: en})
		if err != nil {
			t.Fatal(err)
		}
		return got.GetParticipant()
	}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
		return err1(c.ListParticipantEnrolments(ctx, &enrolmentv1.ListParticipantEnrolmentsRequest{Parent: name}))
	}, onlyStaff, false},
}

func auditRecords(t *testing.T, rdb redis.UniversalClient) []*accessv1.AuditRecord {
	t.Helper()
	msgs, err := rdb.XRange(ctx, enrolment.Keyspace.Audit(), "-", "+").Result()
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

// The matrix: every RPC × every role × its own object and another's, over
// real gRPC through the guard, with the audit records each call leaves.
func TestPolicyMatrix(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		w := &world{e: e, project: mustProject(t, e, vastkraft("vk")).GetName()}
		w.own = w.offering(t, 0, enrolmentv1.Offering_STATE_OPEN)
		w.other = w.offering(t, 1, enrolmentv1.Offering_STATE_OPEN)
		w.participant(t) // so that a list of participants holds personal data
		methods := map[string]bool{}
		for _, row := range matrix {
			methods[row.method] = true
			for _, p := range principals {
				exp, listed := row.want[p.label]
				if !listed {
					t.Fatalf("%s: no expectation for %s", row.method, p.label)
				}
				for side := range 2 {
					t.Run(fmt.Sprintf("%s/%s/%s", row.method, p.label, [2]string{"own", "other"}[side]), func(t *testing.T) {
						target := row.setup(t, w, side)
						before := len(auditRecords(t, e.rdb))
						e.clock.tick()
						err := row.call(testkit.AsRole(ctx, p.role, p.subject), e.c, target)
						if got := status.Code(err); got != exp[side] {
							t.Fatalf("got %v, want %v", err, exp[side])
						}
						checkAudit(t, e, row, p, before, status.Code(err))
					})
				}
			}
		}
		ms := enrolmentv1.File_kompetensnav_enrolment_v1_enrolment_proto.Services().Get(0).Methods()
		for i := range ms.Len() {
			name := string(ms.Get(i).Name())
			if why, ok := rowsElsewhere[name]; ok && !methods[name] {
				t.Logf("no row for %s: %s", name, why)
				continue
			}
			if !methods[name] {
				t.Errorf("the matrix has no row for %s", name)
			}
		}
	})
}

// checkAudit: a refused call leaves one denial record; a write one write
// record; a response with personal data, read by staff, one sensitive-read
// record; nothing else. None names the personal identity number.
func checkAudit(t *testing.T, e env, row matrixRow, p principal, before int, got codes.Code) {
	t.Helper()
	recs := auditRecords(t, e.rdb)[before:]
	var kinds []accessv1.AuditRecord_Kind
	switch {
	case got != ok:
		kinds = append(kinds, accessv1.AuditRecord_KIND_DENIAL)
	default:
		if enrolment.Policy.Rules[row.method].Write {
			kinds = append(kinds, accessv1.AuditRecord_KIND_WRITE)
		}
		if row.sensitive && p.role == auth.Staff {
			kinds = append(kinds, accessv1.AuditRecord_KIND_SENSITIVE_READ)
		}
	}
	var gotKinds []accessv1.AuditRecord_Kind
	for _, r := range recs {
		gotKinds = append(gotKinds, r.GetKind())
	}
	if !slices.Equal(gotKinds, kinds) {
		t.Fatalf("audit records %v, want %v", gotKinds, kinds)
	}
	wantID := "test/" + strings.ToLower(strings.TrimPrefix(p.role.String(), "ROLE_"))
	for _, r := range recs {
		if r.GetPrincipal() != wantID || r.GetRole() != p.role || r.GetPrincipalSubject() != p.subject ||
			r.GetService() != "enrolment" || r.GetMethod() != "kompetensnav.enrolment.v1.EnrolmentService/"+row.method ||
			r.GetOutcome() != audit.OutcomeName(got) || r.GetTime() == nil {
			t.Fatalf("audit record %v", r)
		}
		if row.method == "LookupParticipant" && r.GetResource() != "" {
			t.Fatalf("the lookup's record names %q", r.GetResource())
		}
	}
}

// A provider sees the enrolments of its own offerings, without the
// personal data an enrolment can hold (a withdrawal's reason), and gets
// the same refusal for another's offering as for one that does not exist.
func TestProviderSeesOwnOfferingsEnrolmentsWithoutPersonalData(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		w := &world{e: e, project: mustProject(t, e, vastkraft("vk")).GetName()}
		own := w.offering(t, 0, enrolmentv1.Offering_STATE_OPEN)
		en := w.enrolment(t, own)
		if _, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: en, Reason: "Sjukskriven"}); err != nil {
			t.Fatal(err)
		}
		lernia := testkit.AsRole(ctx, auth.Provider, "providers/lernia")
		list, err := e.c.ListEnrolments(lernia, &enrolmentv1.ListEnrolmentsRequest{Parent: own})
		if err != nil || len(list.GetEnrolments()) != 1 {
			t.Fatalf("%v %v", list, err)
		}
		if got := list.GetEnrolments()[0]; got.GetWithdrawReason() != "" || got.GetParticipant() == "" || got.GetState() != enrolmentv1.Enrolment_STATE_WITHDRAWN {
			t.Fatalf("provider sees %v", got)
		}
		staffList, _ := e.c.ListEnrolments(ctx, &enrolmentv1.ListEnrolmentsRequest{Parent: own})
		if staffList.GetEnrolments()[0].GetWithdrawReason() != "Sjukskriven" {
			t.Fatal("staff should see the reason")
		}
		folk := testkit.AsRole(ctx, auth.Provider, "providers/folkuniversitetet")
		_, errOther := e.c.ListEnrolments(folk, &enrolmentv1.ListEnrolmentsRequest{Parent: own})
		_, errNone := e.c.ListEnrolments(folk, &enrolmentv1.ListEnrolmentsRequest{Parent: "offerings/finns-inte"})
		wantCode(t, errOther, codes.PermissionDenied)
		wantCode(t, errNone, codes.PermissionDenied)
		if strings.Contains(errOther.Error(), "lernia") {
			t.Fatalf("the refusal tells whose it is: %v", errOther)
		}
	})
}
