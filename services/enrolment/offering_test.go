package enrolment_test

import (
	"slices"
	"strings"
	"testing"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/genproto/googleapis/type/timeofday"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func TestOfferingFromAnAwardedCallOff(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		p := mustProject(t, e, vastkraft("vk"))
		o := mustOffering(t, e, svets("svets", p.GetName(), 20), false)
		if o.GetState() != enrolmentv1.Offering_STATE_PLANNED || o.GetProvider() != "providers/lernia" || o.GetDays() != 3 ||
			!slices.Equal(o.GetSkills(), []string{"skills/robotsvetsning"}) || o.GetLanguage() != "sv" {
			t.Fatalf("created %v", o)
		}
		before := digest(t, e.rdb)
		// Not awarded: FAILED_PRECONDITION naming its state.
		req := svets("x", p.GetName(), 20)
		req.Offering.CallOff = "callOffs/offered"
		_, err := e.c.CreateOffering(ctx, req)
		wantRule(t, err, "CALL_OFF_STATE")
		if !strings.Contains(err.Error(), "STATE_OFFERED") {
			t.Fatalf("does not name the state: %v", err)
		}
		// A call-off made for another project.
		e.callOffs.set(enrolment.CallOff{Name: "callOffs/annat", State: "STATE_AWARDED", Awarded: true, Provider: "providers/lernia",
			Days: 3, Project: "projects/annat"})
		req = svets("x", p.GetName(), 20)
		req.Offering.CallOff = "callOffs/annat"
		_, err = e.c.CreateOffering(ctx, req)
		wantRule(t, err, "CALL_OFF_PROJECT")
		// Bad input: 400 naming the field.
		for _, c := range []struct {
			field string
			edit  func(o *enrolmentv1.Offering)
		}{
			{"offering.call_off", func(o *enrolmentv1.Offering) { o.CallOff = "callOffs/finns-inte" }},
			{"offering.sessions", func(o *enrolmentv1.Offering) { o.Sessions = o.Sessions[:2] }},
			{"offering.sessions[2].date", func(o *enrolmentv1.Offering) { o.Sessions[2].Date = d(2028, 1, 10) }},
			{"offering.sessions[1].date", func(o *enrolmentv1.Offering) { o.Sessions[1].Date = d(2026, 4, 13) }},
			{"offering.sessions[0].date", func(o *enrolmentv1.Offering) { o.Sessions[0].Date = d(2026, 2, 30) }},
			{"offering.sessions[0].end_time", func(o *enrolmentv1.Offering) { o.Sessions[0].EndTime = &timeofday.TimeOfDay{Hours: 7} }},
			{"offering.sessions[0].start_time", func(o *enrolmentv1.Offering) { o.Sessions[0].StartTime = &timeofday.TimeOfDay{Hours: 25} }},
			{"offering.registration_deadline", func(o *enrolmentv1.Offering) { o.RegistrationDeadline = d(2026, 4, 14) }},
			{"offering.language", func(o *enrolmentv1.Offering) { o.Language = "not a tag!" }},
			{"offering.municipality", func(o *enrolmentv1.Offering) { o.Municipality = "9999" }},
			{"offering.capacity", func(o *enrolmentv1.Offering) { o.Capacity = 501 }},
			{"offering.capacity", func(o *enrolmentv1.Offering) { o.Capacity = 0 }},
			{"offering.mode", func(o *enrolmentv1.Offering) { o.Mode = enrolmentv1.Offering_MODE_UNSPECIFIED }},
			{"offering.project", func(o *enrolmentv1.Offering) { o.Project = "projects/finns-inte" }},
			{"offering.sessions", func(o *enrolmentv1.Offering) { o.Sessions = nil }},
		} {
			req := svets("x", p.GetName(), 20)
			c.edit(req.Offering)
			_, err := e.c.CreateOffering(ctx, req)
			testkit.WantBadRequest(t, err, c.field)
		}
		// Procurement down: UNAVAILABLE, nothing written.
		e.callOffs.mu.Lock()
		e.callOffs.down = true
		e.callOffs.mu.Unlock()
		_, err = e.c.CreateOffering(ctx, svets("x", p.GetName(), 20))
		if st := wantCode(t, err, codes.Unavailable); !strings.Contains(st.Message(), "nothing was written") {
			t.Fatal(st.Message())
		}
		e.callOffs.mu.Lock()
		e.callOffs.down = false
		e.callOffs.mu.Unlock()
		if digest(t, e.rdb) != before {
			t.Fatal("a refused offering wrote something")
		}
		// A closed project takes no offerings.
		if _, err := e.c.CloseProject(ctx, &enrolmentv1.CloseProjectRequest{Name: p.GetName()}); err != nil {
			t.Fatal(err)
		}
		_, err = e.c.CreateOffering(ctx, svets("x", p.GetName(), 20))
		wantRule(t, err, "PROJECT_STATE")
	})
}

func TestOfferingLifecycleAndLists(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		p := mustProject(t, e, vastkraft("vk"))
		o := mustOffering(t, e, svets("svets", p.GetName(), 20), false)
		// Only a PLANNED offering is edited; its call-off and project stay.
		up, err := e.c.UpdateOffering(ctx, &enrolmentv1.UpdateOfferingRequest{
			Offering:   &enrolmentv1.Offering{Name: o.GetName(), Capacity: 24, Language: "EN"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"capacity", "language"}}})
		if err != nil || up.GetCapacity() != 24 || up.GetLanguage() != "en" {
			t.Fatalf("update %v %v", up, err)
		}
		_, err = e.c.UpdateOffering(ctx, &enrolmentv1.UpdateOfferingRequest{Offering: &enrolmentv1.Offering{Name: o.GetName(), CallOff: "callOffs/cnc"}})
		testkit.WantBadRequest(t, err, "offering.call_off")
		up.Title = "Robotsvetsning, grund" // the whole resource sent back, call-off unchanged
		if _, err := e.c.UpdateOffering(ctx, &enrolmentv1.UpdateOfferingRequest{Offering: up}); err != nil {
			t.Fatalf("sending back the offering read: %v", err)
		}
		_, err = e.c.UpdateOffering(ctx, &enrolmentv1.UpdateOfferingRequest{Offering: &enrolmentv1.Offering{Name: o.GetName(),
			Sessions: []*enrolmentv1.Session{session(2026, 4, 13)}}})
		testkit.WantBadRequest(t, err, "offering.sessions")

		_, err = e.c.StartOffering(ctx, &enrolmentv1.StartOfferingRequest{Name: o.GetName()})
		wantRule(t, err, "STATE")
		for _, step := range []struct {
			call func() (*enrolmentv1.Offering, error)
			want enrolmentv1.Offering_State
		}{
			{func() (*enrolmentv1.Offering, error) {
				return e.c.OpenOffering(ctx, &enrolmentv1.OpenOfferingRequest{Name: o.GetName()})
			}, enrolmentv1.Offering_STATE_OPEN},
			{func() (*enrolmentv1.Offering, error) {
				return e.c.StartOffering(ctx, &enrolmentv1.StartOfferingRequest{Name: o.GetName()})
			}, enrolmentv1.Offering_STATE_RUNNING},
			{func() (*enrolmentv1.Offering, error) {
				return e.c.FinishOffering(ctx, &enrolmentv1.FinishOfferingRequest{Name: o.GetName()})
			}, enrolmentv1.Offering_STATE_FINISHED},
		} {
			got, err := step.call()
			if err != nil || got.GetState() != step.want {
				t.Fatalf("want %v: %v %v", step.want, got, err)
			}
		}
		_, err = e.c.UpdateOffering(ctx, &enrolmentv1.UpdateOfferingRequest{Offering: &enrolmentv1.Offering{Name: o.GetName(), Capacity: 5}})
		wantRule(t, err, "STATE")
		_, err = e.c.CancelOffering(ctx, &enrolmentv1.CancelOfferingRequest{Name: o.GetName(), Reason: "x"})
		wantRule(t, err, "STATE")

		// Opening needs the deadline ahead.
		late := svets("sen", p.GetName(), 20)
		late.Offering.RegistrationDeadline = d(2026, 3, 1)
		lo := mustOffering(t, e, late, false)
		_, err = e.c.OpenOffering(ctx, &enrolmentv1.OpenOfferingRequest{Name: lo.GetName()})
		wantRule(t, err, "REGISTRATION_DEADLINE")
		if c, err := e.c.CancelOffering(ctx, &enrolmentv1.CancelOfferingRequest{Name: lo.GetName(), Reason: "Inställd"}); err != nil ||
			c.GetState() != enrolmentv1.Offering_STATE_CANCELLED || c.GetStateReason() != "Inställd" {
			t.Fatalf("cancel %v %v", c, err)
		}
		cnc := svets("cnc", p.GetName(), 10)
		cnc.Offering.CallOff, cnc.Offering.Sessions, cnc.Offering.Municipality = "callOffs/cnc", cnc.Offering.Sessions[:1], "1440"
		mustOffering(t, e, cnc, true)

		for filter, want := range map[string][]string{
			`provider = "providers/folkuniversitetet"`:                {"offerings/cnc"},
			`state = STATE_OPEN`:                                      {"offerings/cnc"},
			`municipality = "1480"`:                                   {"offerings/svets", "offerings/sen"},
			`project = "projects/vk" AND state = STATE_CANCELLED`:     {"offerings/sen"},
			`project = "projects/vk" AND mode = MODE_CLASSROOM`:       {"offerings/svets", "offerings/sen", "offerings/cnc"},
			`call_off = "callOffs/svets" AND state != STATE_FINISHED`: {"offerings/sen"},
		} {
			list, err := e.c.ListOfferings(ctx, &enrolmentv1.ListOfferingsRequest{Filter: filter})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range list.GetOfferings() {
				got = append(got, o.GetName())
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: %v, want %v", filter, got, want)
			}
		}
	})
}
