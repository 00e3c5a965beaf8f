package enrolment_test

import (
	"strings"
	"testing"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func TestProjectLifecycle(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		p := mustProject(t, e, vastkraft("vastkraft"))
		if p.GetName() != "projects/vastkraft" || p.GetState() != enrolmentv1.Project_STATE_ACTIVE || p.GetEtag() == "" ||
			p.GetTargets().GetParticipants() != 3500 || len(p.GetRegion()) != 13 {
			t.Fatalf("created %v", p)
		}
		// The reference number is unique; the refusal names the holder.
		dup := vastkraft("annan")
		dup.Project.ReferenceNumber = p.GetReferenceNumber()
		_, err := e.c.CreateProject(ctx, dup)
		if st := wantCode(t, err, codes.AlreadyExists); !strings.Contains(st.Message(), "projects/vastkraft") {
			t.Fatalf("duplicate reference: %v", err)
		}
		// A retry with the same request id creates nothing new.
		gr := vastkraft("gr")
		gr.RequestId = "3f6c1e0a-9b1d"
		gr.Project.ReferenceNumber, gr.Project.DisplayName = "2020/00312", "GR kompetensomställning"
		first := mustProject(t, e, gr)
		again := mustProject(t, e, gr)
		if again.GetName() != first.GetName() || again.GetEtag() != first.GetEtag() {
			t.Fatalf("retry gave %v", again)
		}

		// Update with a mask and the etag; a stale etag is ABORTED.
		up, err := e.c.UpdateProject(ctx, &enrolmentv1.UpdateProjectRequest{
			Project:    &enrolmentv1.Project{Name: p.GetName(), Etag: p.GetEtag(), Targets: &enrolmentv1.Targets{Participants: 4000, Women: 1500}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"targets"}}})
		if err != nil || up.GetTargets().GetParticipants() != 4000 || up.GetDisplayName() != p.GetDisplayName() {
			t.Fatalf("update %v %v", up, err)
		}
		_, err = e.c.UpdateProject(ctx, &enrolmentv1.UpdateProjectRequest{
			Project: &enrolmentv1.Project{Name: p.GetName(), Etag: p.GetEtag(), Funder: "Annan"}})
		wantCode(t, err, codes.Aborted)
		// An update that changes nothing writes nothing.
		same, err := e.c.UpdateProject(ctx, &enrolmentv1.UpdateProjectRequest{Project: &enrolmentv1.Project{Name: p.GetName(), Funder: p.GetFunder()}})
		if err != nil || same.GetEtag() != up.GetEtag() {
			t.Fatalf("no-op update: %v %v", same, err)
		}
		// Changing the reference number moves its uniqueness.
		up, err = e.c.UpdateProject(ctx, &enrolmentv1.UpdateProjectRequest{Project: &enrolmentv1.Project{Name: p.GetName(), ReferenceNumber: "2026/00001"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.c.UpdateProject(ctx, &enrolmentv1.UpdateProjectRequest{Project: &enrolmentv1.Project{Name: p.GetName(), ReferenceNumber: "2020/00312"}})
		wantCode(t, err, codes.AlreadyExists)
		freed := vastkraft("ny")
		freed.Project.ReferenceNumber = p.GetReferenceNumber() // the old one is free again
		mustProject(t, e, freed)

		// Lists: by state, by region.
		list, err := e.c.ListProjects(ctx, &enrolmentv1.ListProjectsRequest{Filter: `state = STATE_ACTIVE AND region:"1480"`, OrderBy: "displayName"})
		if err != nil || len(list.GetProjects()) != 3 || list.GetProjects()[0].GetName() != "projects/gr" {
			t.Fatalf("list %v %v", list, err)
		}

		// Close: touches nothing else, and a closed project is read-only.
		closed, err := e.c.CloseProject(ctx, &enrolmentv1.CloseProjectRequest{Name: p.GetName(), Reason: "Projekttiden slut"})
		if err != nil || closed.GetState() != enrolmentv1.Project_STATE_CLOSED || closed.GetCloseTime() == nil {
			t.Fatalf("close %v %v", closed, err)
		}
		_, err = e.c.CloseProject(ctx, &enrolmentv1.CloseProjectRequest{Name: p.GetName()})
		wantRule(t, err, "STATE")
		_, err = e.c.UpdateProject(ctx, &enrolmentv1.UpdateProjectRequest{Project: &enrolmentv1.Project{Name: p.GetName(), Funder: "X"}})
		wantRule(t, err, "STATE")
		list, _ = e.c.ListProjects(ctx, &enrolmentv1.ListProjectsRequest{Filter: "state = STATE_CLOSED"})
		if len(list.GetProjects()) != 1 {
			t.Fatalf("closed list %v", list)
		}
		types := eventTypes(t, e)
		if count(types, "project.created") != 3 || count(types, "project.updated") != 2 || count(types, "project.closed") != 1 {
			t.Fatalf("events %v", types)
		}
	})
}

// Every rule of a project is a 400 naming the field, and nothing is written.
func TestProjectValidation(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		mustProject(t, e, vastkraft("finns"))
		before := digest(t, e.rdb)
		for _, c := range []struct {
			field string
			edit  func(p *enrolmentv1.Project)
		}{
			{"project.targets.women", func(p *enrolmentv1.Project) { p.Targets.Women = 4000 }},
			{"project.targets.employed", func(p *enrolmentv1.Project) { p.Targets.Employed = 3501 }},
			{"project.targets.participants", func(p *enrolmentv1.Project) { p.Targets.Participants = -1 }},
			{"project.end_date", func(p *enrolmentv1.Project) { p.EndDate = d(2025, 12, 31) }},
			{"project.start_date", func(p *enrolmentv1.Project) { p.StartDate = d(2026, 2, 30) }},
			{"project.budget.currency_code", func(p *enrolmentv1.Project) { p.Budget = &money.Money{CurrencyCode: "EUR", Units: 10} }},
			{"project.budget", func(p *enrolmentv1.Project) { p.Budget = sek(-5) }},
			{"project.region[1]", func(p *enrolmentv1.Project) { p.Region = []string{"1480", "9999"} }},
			{"project.region", func(p *enrolmentv1.Project) { p.Region = nil }},
			{"project.eligible_target_groups", func(p *enrolmentv1.Project) { p.EligibleTargetGroups = nil }},
			{"project.eligible_target_groups[0]", func(p *enrolmentv1.Project) {
				p.EligibleTargetGroups = []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_UNSPECIFIED}
			}},
			{"project.reference_number", func(p *enrolmentv1.Project) { p.ReferenceNumber = "/2020" }},
			{"project.display_name", func(p *enrolmentv1.Project) { p.DisplayName = "" }},
			{"project.targets", func(p *enrolmentv1.Project) { p.Targets = nil }},
		} {
			req := vastkraft("ny")
			c.edit(req.Project)
			_, err := e.c.CreateProject(ctx, req)
			testkit.WantBadRequest(t, err, c.field)
		}
		// Updates are checked the same way.
		_, err := e.c.UpdateProject(ctx, &enrolmentv1.UpdateProjectRequest{Project: &enrolmentv1.Project{Name: "projects/finns",
			Targets: &enrolmentv1.Targets{Participants: 10, Women: 11}}})
		testkit.WantBadRequest(t, err, "project.targets.women")
		if digest(t, e.rdb) != before {
			t.Fatal("a refused request wrote something")
		}
	})
}

// Moving a project's dates may not strand an offering's sessions outside.
func TestProjectDatesKeepOfferingsInside(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		p := mustProject(t, e, vastkraft("vk"))
		o := mustOffering(t, e, svets("svets", p.GetName(), 20), false)
		_, err := e.c.UpdateProject(ctx, &enrolmentv1.UpdateProjectRequest{Project: &enrolmentv1.Project{Name: p.GetName(), EndDate: d(2026, 4, 14)}})
		wantRule(t, err, "PROJECT_PERIOD")
		if !strings.Contains(err.Error(), o.GetName()) {
			t.Fatalf("refusal does not name the offering: %v", err)
		}
		// Once it is cancelled, it no longer holds the dates.
		if _, err := e.c.CancelOffering(ctx, &enrolmentv1.CancelOfferingRequest{Name: o.GetName(), Reason: "Flyttad"}); err != nil {
			t.Fatal(err)
		}
		up, err := e.c.UpdateProject(ctx, &enrolmentv1.UpdateProjectRequest{Project: &enrolmentv1.Project{Name: p.GetName(), EndDate: d(2026, 4, 14)}})
		if err != nil || !proto.Equal(up.GetEndDate(), d(2026, 4, 14)) {
			t.Fatalf("%v %v", up, err)
		}
	})
}
