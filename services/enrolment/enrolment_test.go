package enrolment_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Each eligibility rule refuses with FAILED_PRECONDITION naming it, and
// nothing is written.
func TestEnrolmentEligibility(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		narrow := vastkraft("smal")
		narrow.Project.Region = []string{"1480", "1481"}
		narrow.Project.EligibleTargetGroups = []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_NOTIFIED}
		p := mustProject(t, e, narrow)
		open := mustOffering(t, e, svets("oppen", p.GetName(), 5), true)
		planned := mustOffering(t, e, svets("planerad", p.GetName(), 5), false)
		ok := mustParticipant(t, e, person(nthNumber(1)))
		elsewhere := person(nthNumber(2))
		elsewhere.Municipality = "1401" // Härryda: in GR, not in this project's region
		far := mustParticipant(t, e, elsewhere)
		seeker := person(nthNumber(3))
		seeker.LabourMarketStatus = enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_JOB_SEEKER
		js := mustParticipant(t, e, seeker)
		inactive := person(nthNumber(4))
		inactive.LabourMarketStatus = enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_INACTIVE
		ia := mustParticipant(t, e, inactive)
		before := digest(t, e.rdb)

		_, err := enrol(e, open.GetName(), far.GetName())
		wantRule(t, err, "MUNICIPALITY")
		_, err = enrol(e, open.GetName(), js.GetName())
		wantRule(t, err, "TARGET_GROUP")
		_, err = enrol(e, open.GetName(), ia.GetName())
		wantRule(t, err, "TARGET_GROUP")
		_, err = enrol(e, planned.GetName(), ok.GetName())
		wantRule(t, err, "OFFERING_STATE")
		_, err = enrol(e, open.GetName(), "participants/finns-inte")
		testkit.WantBadRequest(t, err, "enrolment.participant")
		_, err = enrol(e, "offerings/finns-inte", ok.GetName())
		wantCode(t, err, codes.NotFound)
		// After the deadline.
		e.clock.set(time.Date(2026, 4, 2, 8, 0, 0, 0, time.UTC))
		_, err = enrol(e, open.GetName(), ok.GetName())
		wantRule(t, err, "REGISTRATION_DEADLINE")
		// Every rule broken at once is named at once.
		_, err = enrol(e, open.GetName(), far.GetName())
		wantRule(t, err, "REGISTRATION_DEADLINE")
		wantRule(t, err, "MUNICIPALITY")
		if digest(t, e.rdb) != before {
			t.Fatal("a refused enrolment wrote something")
		}
		e.clock.set(start)

		// Enrolled once; a second time is ALREADY_EXISTS naming the first.
		first, err := enrol(e, open.GetName(), ok.GetName())
		if err != nil || first.GetState() != enrolmentv1.Enrolment_STATE_ENROLLED || first.GetProject() != p.GetName() {
			t.Fatalf("enrol %v %v", first, err)
		}
		_, err = enrol(e, open.GetName(), ok.GetName())
		if st := wantCode(t, err, codes.AlreadyExists); !strings.Contains(st.Message(), first.GetName()) {
			t.Fatal(st.Message())
		}
		// A closed project takes no enrolments.
		if _, err := e.c.CloseProject(ctx, &enrolmentv1.CloseProjectRequest{Name: p.GetName()}); err != nil {
			t.Fatal(err)
		}
		other := mustParticipant(t, e, person(nthNumber(5)))
		_, err = enrol(e, open.GetName(), other.GetName())
		wantRule(t, err, "PROJECT_STATE")

		// The snapshot for the reports is stored beside the enrolment.
		o, id, _ := strings.Cut(strings.TrimPrefix(first.GetName(), "offerings/"), "/enrolments/")
		raw, err := e.rdb.HGet(ctx, "kn:{enrolment}:enrolment:"+o+":"+id, "snapshot").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var snap enrolmentv1.EnrolmentSnapshot
		if err := proto.Unmarshal(raw, &snap); err != nil {
			t.Fatal(err)
		}
		want := &enrolmentv1.EnrolmentSnapshot{Participant: ok.GetName(), Project: p.GetName(), Offering: open.GetName(),
			EnrolDate: d(2026, 3, 2), Gender: enrolmentv1.Gender_GENDER_WOMAN, AgeBand: enrolmentv1.AgeBand_AGE_BAND_55_PLUS,
			LabourMarketStatus: enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_NOTIFIED,
			EducationLevel:     enrolmentv1.EducationLevel_EDUCATION_LEVEL_ISCED_3_4, Municipality: "1480"}
		if !proto.Equal(&snap, want) {
			t.Fatalf("snapshot %v, want %v", &snap, want)
		}
	})
}

// The test: 200 concurrent enrolments into 20 seats, 10
// concurrent withdrawals, the same participant twice at once.
func TestEnrolmentNeverOverbooks(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		p := mustProject(t, e, vastkraft("vk"))
		o := mustOffering(t, e, svets("svets", p.GetName(), 20), true)
		people := make([]string, 200)
		for i := range people {
			people[i] = mustParticipant(t, e, person(nthNumber(i))).GetName()
		}
		results := make([]*enrolmentv1.Enrolment, len(people))
		var wg sync.WaitGroup
		for i, who := range people {
			wg.Go(func() {
				r, err := enrol(e, o.GetName(), who)
				if err != nil {
					t.Error(err)
				}
				results[i] = r
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		var seated int
		var positions []int32
		for _, r := range results {
			switch r.GetState() {
			case enrolmentv1.Enrolment_STATE_ENROLLED:
				seated++
				if r.GetWaitlistPosition() != 0 {
					t.Fatalf("enrolled with a position: %v", r)
				}
			case enrolmentv1.Enrolment_STATE_WAITLISTED:
				positions = append(positions, r.GetWaitlistPosition())
			default:
				t.Fatalf("state %v", r)
			}
		}
		slices.Sort(positions)
		if seated != 20 || len(positions) != 180 {
			t.Fatalf("%d enrolled, %d waitlisted", seated, len(positions))
		}
		for i, pos := range positions {
			if pos != int32(i+1) {
				t.Fatalf("positions are not 1..180, each once: %v", positions)
			}
		}
		got, err := e.c.GetOffering(ctx, &enrolmentv1.GetOfferingRequest{Name: o.GetName()})
		if err != nil || got.GetEnrolledCount() != 20 || got.GetWaitlistedCount() != 180 {
			t.Fatalf("counts %v %v", got, err)
		}

		// The waitlist in order, then 10 concurrent withdrawals of seats.
		waitlist := listAll(t, e, o.GetName(), "waitlist_position", "")
		if len(waitlist) != 180 {
			t.Fatalf("waitlist of %d", len(waitlist))
		}
		for i, w := range waitlist {
			if w.GetWaitlistPosition() != int32(i+1) {
				t.Fatalf("waitlist page order: %d at %d", w.GetWaitlistPosition(), i)
			}
		}
		seats := listAll(t, e, o.GetName(), "", "state = STATE_ENROLLED")
		eventsBefore := len(eventTypes(t, e))
		for _, s := range seats[:10] {
			wg.Go(func() {
				w, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: s.GetName(), Reason: "Fick nytt jobb"})
				if err != nil || w.GetState() != enrolmentv1.Enrolment_STATE_WITHDRAWN {
					t.Errorf("withdraw %v %v", w, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		// Positions 1–10 got the seats, promoted in that order.
		for i, w := range waitlist[:10] {
			now, err := e.c.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: w.GetName()})
			if err != nil || now.GetState() != enrolmentv1.Enrolment_STATE_ENROLLED || now.GetPromoteTime() == nil {
				t.Fatalf("position %d: %v %v", i+1, now, err)
			}
		}
		var promoted []string
		msgs, _ := e.rdb.XRange(ctx, enrolment.Keyspace.Events(), "-", "+").Result()
		for _, m := range msgs[eventsBefore:] {
			if m.Values["type"] == "kompetensnav.enrolment.v1.enrolment.promoted" {
				var ev commonv1.Event
				if err := proto.Unmarshal([]byte(m.Values["event"].(string)), &ev); err != nil {
					t.Fatal(err)
				}
				promoted = append(promoted, ev.GetSubject())
			}
		}
		var first10 []string
		for _, w := range waitlist[:10] {
			first10 = append(first10, w.GetName())
		}
		if !slices.Equal(promoted, first10) {
			t.Fatalf("promoted %v, want positions 1–10 in order %v", promoted, first10)
		}
		rest := listAll(t, e, o.GetName(), "waitlist_position", "state = STATE_WAITLISTED")
		if len(rest) != 170 || rest[0].GetName() != waitlist[10].GetName() || rest[0].GetWaitlistPosition() != 1 || rest[169].GetWaitlistPosition() != 170 {
			t.Fatalf("the waitlist after: %d, first %v", len(rest), rest[0])
		}
		got, _ = e.c.GetOffering(ctx, &enrolmentv1.GetOfferingRequest{Name: o.GetName()})
		if got.GetEnrolledCount() != 20 || got.GetWaitlistedCount() != 170 {
			t.Fatalf("counts after withdrawals %d/%d", got.GetEnrolledCount(), got.GetWaitlistedCount())
		}

		// The same participant twice at once: one enrolment.
		again := mustParticipant(t, e, person(nthNumber(500)))
		var okCount, exists int
		var mu sync.Mutex
		for range 2 {
			wg.Go(func() {
				_, err := enrol(e, o.GetName(), again.GetName())
				mu.Lock()
				defer mu.Unlock()
				switch status.Code(err) {
				case codes.OK:
					okCount++
				case codes.AlreadyExists:
					exists++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		mine, err := e.c.ListParticipantEnrolments(ctx, &enrolmentv1.ListParticipantEnrolmentsRequest{Parent: again.GetName()})
		if okCount != 1 || exists != 1 || err != nil || len(mine.GetEnrolments()) != 1 {
			t.Fatalf("%d ok, %d already exists, %v %v", okCount, exists, mine, err)
		}
		got, _ = e.c.GetOffering(ctx, &enrolmentv1.GetOfferingRequest{Name: o.GetName()})
		if got.GetEnrolledCount() != 20 || got.GetWaitlistedCount() != 171 {
			t.Fatalf("counts %d/%d", got.GetEnrolledCount(), got.GetWaitlistedCount())
		}
	})
}

// listAll pages through an offering's enrolments.
func listAll(t *testing.T, e env, offering, order, filter string) []*enrolmentv1.Enrolment {
	t.Helper()
	var out []*enrolmentv1.Enrolment
	token := ""
	for {
		page, err := e.c.ListEnrolments(ctx, &enrolmentv1.ListEnrolmentsRequest{Parent: offering, OrderBy: order, Filter: filter,
			PageSize: 37, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.GetEnrolments()...)
		if token = page.GetNextPageToken(); token == "" {
			return out
		}
	}
}

func TestWithdrawals(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		p := mustProject(t, e, vastkraft("vk"))
		o := mustOffering(t, e, svets("svets", p.GetName(), 1), true)
		var es []*enrolmentv1.Enrolment
		for i := range 4 {
			e.clock.tick()
			en, err := enrol(e, o.GetName(), mustParticipant(t, e, person(nthNumber(i))).GetName())
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, en)
		}
		if es[0].GetState() != enrolmentv1.Enrolment_STATE_ENROLLED || es[3].GetWaitlistPosition() != 3 {
			t.Fatalf("%v … %v", es[0], es[3])
		}
		// A waitlisted one leaves: the one behind moves up; no promotion.
		if _, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: es[2].GetName()}); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.c.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: es[3].GetName()}); got.GetWaitlistPosition() != 2 {
			t.Fatalf("after a withdrawal ahead: %v", got)
		}
		_, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: es[2].GetName()})
		wantRule(t, err, "STATE")
		_, err = e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: es[1].GetName(), Etag: "stale"})
		wantCode(t, err, codes.Aborted)
		// The seat's holder leaves: position 1 gets it.
		w, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: es[0].GetName(), Reason: "Sjukskriven"})
		if err != nil || w.GetWithdrawReason() != "Sjukskriven" {
			t.Fatalf("withdraw %v %v", w, err)
		}
		if got, _ := e.c.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: es[1].GetName()}); got.GetState() != enrolmentv1.Enrolment_STATE_ENROLLED {
			t.Fatalf("not promoted: %v", got)
		}
		// The participant who withdrew may enrol again (at the back).
		e.clock.tick()
		back, err := enrol(e, o.GetName(), es[0].GetParticipant())
		if err != nil || back.GetWaitlistPosition() != 2 {
			t.Fatalf("re-enrol %v %v", back, err)
		}
		// Seat holder leaves with nobody... the waitlist is es[3], back.
		for _, n := range []string{es[1].GetName(), es[3].GetName(), back.GetName()} {
			if _, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: n}); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := e.c.GetOffering(ctx, &enrolmentv1.GetOfferingRequest{Name: o.GetName()})
		if got.GetEnrolledCount() != 0 || got.GetWaitlistedCount() != 0 {
			t.Fatalf("counts %d/%d", got.GetEnrolledCount(), got.GetWaitlistedCount())
		}
		// The withdrawal's reason never reaches an event.
		msgs, _ := e.rdb.XRange(ctx, enrolment.Keyspace.Events(), "-", "+").Result()
		for _, m := range msgs {
			if strings.Contains(fmt.Sprint(m.Values), "Sjukskriven") {
				t.Fatal("the reason is in an event")
			}
		}
		types := eventTypes(t, e)
		if count(types, "enrolment.enrolled") != 1 || count(types, "enrolment.waitlisted") != 4 || count(types, "enrolment.withdrawn") != 5 ||
			count(types, "enrolment.promoted") != 3 {
			t.Fatalf("events %v", types)
		}
		// Lists: filters, both orders, across offerings.
		all := listAll(t, e, o.GetName(), "", "")
		if len(all) != 5 || all[0].GetName() != es[0].GetName() {
			t.Fatalf("all %v", all)
		}
		if w := listAll(t, e, o.GetName(), "createTime desc", "state = STATE_WITHDRAWN"); len(w) != 5 || w[0].GetName() != back.GetName() {
			t.Fatalf("withdrawn, newest first %v", w)
		}
		_, err = e.c.ListEnrolments(ctx, &enrolmentv1.ListEnrolmentsRequest{Parent: o.GetName(), OrderBy: "waitlist_position", Filter: "state = STATE_ENROLLED"})
		testkit.WantBadRequest(t, err, "filter")
		mine, err := e.c.ListParticipantEnrolments(ctx, &enrolmentv1.ListParticipantEnrolmentsRequest{Parent: es[0].GetParticipant()})
		if err != nil || len(mine.GetEnrolments()) != 2 {
			t.Fatalf("the participant's %v %v", mine, err)
		}
		mine, _ = e.c.ListParticipantEnrolments(ctx, &enrolmentv1.ListParticipantEnrolmentsRequest{Parent: es[0].GetParticipant(),
			Filter: `project = "projects/vk" AND state = STATE_WITHDRAWN`})
		if len(mine.GetEnrolments()) != 2 {
			t.Fatalf("filtered %v", mine)
		}
		// Nobody withdraws from a finished course.
		late, _ := enrol(e, o.GetName(), es[3].GetParticipant())
		for _, step := range []func() error{
			func() error {
				_, err := e.c.StartOffering(ctx, &enrolmentv1.StartOfferingRequest{Name: o.GetName()})
				return err
			},
			func() error {
				_, err := e.c.FinishOffering(ctx, &enrolmentv1.FinishOfferingRequest{Name: o.GetName()})
				return err
			},
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		_, err = e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: late.GetName()})
		wantRule(t, err, "STATE")
	})
}

// A request retried with its request id enrols once.
func TestEnrolmentRetriedWithRequestID(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		p := mustProject(t, e, vastkraft("vk"))
		o := mustOffering(t, e, svets("svets", p.GetName(), 1), true)
		who := mustParticipant(t, e, person(nthNumber(1)))
		req := &enrolmentv1.CreateEnrolmentRequest{Parent: o.GetName(), Enrolment: &enrolmentv1.Enrolment{Participant: who.GetName()},
			RequestId: "partner-42"}
		first, err := e.c.CreateEnrolment(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.c.CreateEnrolment(ctx, req)
		if err != nil || again.GetName() != first.GetName() {
			t.Fatalf("retry %v %v", again, err)
		}
		req.Enrolment.Participant = mustParticipant(t, e, person(nthNumber(2))).GetName()
		_, err = e.c.CreateEnrolment(ctx, req)
		testkit.WantBadRequest(t, err, "request_id")
	})
}
