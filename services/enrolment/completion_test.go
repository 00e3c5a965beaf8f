package enrolment_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

const (
	passed      = enrolmentv1.Enrolment_RESULT_PASSED
	failed      = enrolmentv1.Enrolment_RESULT_FAILED
	notAssessed = enrolmentv1.Enrolment_RESULT_NOT_ASSESSED
)

func complete(e env, enrolment string, result enrolmentv1.Enrolment_Result) (*enrolmentv1.Enrolment, error) {
	return e.c.CompleteEnrolment(ctx, &enrolmentv1.CompleteEnrolmentRequest{Name: enrolment, Result: result})
}

func mustRecord(t *testing.T, e env, enrolment string, days ...int) {
	t.Helper()
	for _, day := range days {
		if _, err := record(e, enrolment, day, present, 0); err != nil {
			t.Fatal(err)
		}
	}
}

// lastEvent is the data of the last event of typ on the stream.
func lastEvent[T proto.Message](t *testing.T, e env, typ string, data T) (*commonv1.Event, T) {
	t.Helper()
	msgs, err := e.rdb.XRange(ctx, enrolment.Keyspace.Events(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range slices.Backward(msgs) {
		if m.Values["type"] != "kompetensnav.enrolment.v1."+typ {
			continue
		}
		var ev commonv1.Event
		if err := proto.Unmarshal([]byte(m.Values["event"].(string)), &ev); err != nil {
			t.Fatal(err)
		}
		if err := ev.GetData().UnmarshalTo(data); err != nil {
			t.Fatal(err)
		}
		return &ev, data
	}
	t.Fatalf("no %s event", typ)
	return nil, data
}

// Completing: with every session held recorded, ENROLLED → COMPLETED with
// the result and the offering's skills; enrolment.completed carries the
// enrolment without personal data; the offering's enrolled count and the
// state index follow.
func TestCompleteEnrolment(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := runningCourse(t, e, "svets", 5, 2)
		en := c.enrolments[0]
		mustRecord(t, e, en, 13, 14)
		got, err := complete(e, en, passed)
		if err != nil {
			t.Fatal(err)
		}
		if got.GetState() != enrolmentv1.Enrolment_STATE_COMPLETED || got.GetResult() != passed || got.GetCompleteTime() == nil ||
			!slices.Equal(got.GetSkills(), []string{"skills/robotsvetsning"}) || got.GetProject() != "projects/vk" {
			t.Fatalf("completed %v", got)
		}
		stored, _ := e.c.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: en})
		if !proto.Equal(stored, got) {
			t.Fatalf("stored %v, answered %v", stored, got)
		}
		ev, data := lastEvent(t, e, "enrolment.completed", &enrolmentv1.Enrolment{})
		if ev.GetSubject() != en || data.GetParticipant() != got.GetParticipant() || data.GetResult() != passed ||
			!slices.Equal(data.GetSkills(), got.GetSkills()) || data.GetProject() != "projects/vk" {
			t.Fatalf("event %v %v", ev, data)
		}
		o, _ := e.c.GetOffering(ctx, &enrolmentv1.GetOfferingRequest{Name: c.offering})
		if o.GetEnrolledCount() != 1 {
			t.Fatalf("enrolled count %d after a completion", o.GetEnrolledCount())
		}
		l, err := e.c.ListEnrolments(ctx, &enrolmentv1.ListEnrolmentsRequest{Parent: c.offering, Filter: "state = STATE_COMPLETED"})
		if err != nil || len(l.GetEnrolments()) != 1 || l.GetEnrolments()[0].GetName() != en {
			t.Fatalf("completed %v %v", l, err)
		}
		if l, _ = e.c.ListEnrolments(ctx, &enrolmentv1.ListEnrolmentsRequest{Parent: c.offering, Filter: "state = STATE_ENROLLED"}); len(l.GetEnrolments()) != 1 {
			t.Fatalf("enrolled %v", l)
		}
		// A completed enrolment is not withdrawn, nor does it take
		// attendance.
		_, err = e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: en})
		wantRule(t, err, "STATE")
		_, err = record(e, en, 14, absent, 0)
		wantRule(t, err, "ENROLMENT_STATE")

		// After the offering finished, every session must be recorded.
		if _, err := e.c.FinishOffering(ctx, &enrolmentv1.FinishOfferingRequest{Name: c.offering}); err != nil {
			t.Fatal(err)
		}
		e.clock.set(time.Date(2026, 4, 20, 10, 0, 0, 0, time.UTC))
		other := c.enrolments[1]
		mustRecord(t, e, other, 13, 14)
		_, err = complete(e, other, failed)
		wantRule(t, err, "ATTENDANCE_RECORDED")
		if _, err := record(e, other, 15, absent, 0); err != nil {
			t.Fatal(err)
		}
		if got, err := complete(e, other, failed); err != nil || got.GetResult() != failed {
			t.Fatalf("%v %v", got, err)
		}
	})
}

// Each rule refuses with FAILED_PRECONDITION naming it, and nothing is
// written.
func TestCompleteEnrolmentRefusals(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		mustProject(t, e, vastkraft("vk"))
		idle := mustOffering(t, e, svets("ostartad", "projects/vk", 5), true)
		idler, err := enrol(e, idle.GetName(), mustParticipant(t, e, person(nthNumber(900))).GetName())
		if err != nil {
			t.Fatal(err)
		}
		c := runningCourse(t, e, "svets", 2, 4)
		if _, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: c.enrolments[1]}); err != nil {
			t.Fatal(err)
		}
		en, gone, waiting := c.enrolments[0], c.enrolments[1], c.enrolments[3]
		mustRecord(t, e, en, 13) // not the 14th
		mustRecord(t, e, c.enrolments[2], 13, 14)
		done, err := complete(e, c.enrolments[2], notAssessed)
		if err != nil {
			t.Fatal(err)
		}
		before := digest(t, e.rdb)

		_, err = complete(e, en, passed)
		wantRule(t, err, "ATTENDANCE_RECORDED")
		_, err = complete(e, gone, passed)
		wantRule(t, err, "ENROLMENT_STATE")
		_, err = complete(e, waiting, passed)
		wantRule(t, err, "ENROLMENT_STATE")
		_, err = complete(e, done.GetName(), passed)
		wantRule(t, err, "ENROLMENT_STATE")
		_, err = complete(e, idler.GetName(), passed) // the offering never started (nor its sessions recorded)
		wantRule(t, err, "OFFERING_STATE")
		wantRule(t, err, "ATTENDANCE_RECORDED")
		_, err = complete(e, c.offering+"/enrolments/finns-inte", passed)
		wantCode(t, err, codes.NotFound)
		_, err = e.c.CompleteEnrolment(ctx, &enrolmentv1.CompleteEnrolmentRequest{Name: en, Result: passed, Etag: "stale"})
		wantCode(t, err, codes.Aborted)
		_, err = complete(e, en, enrolmentv1.Enrolment_RESULT_UNSPECIFIED)
		wantCode(t, err, codes.InvalidArgument)
		if digest(t, e.rdb) != before {
			t.Fatal("a refused completion wrote something")
		}
	})
}

// A completion and a withdrawal of the same enrolment at once: exactly
// one wins, the other is refused naming the state, and the offering's
// enrolled count is right either way.
func TestCompleteRacesWithdraw(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		const n = 20
		c := runningCourse(t, e, "svets", n, n)
		for _, en := range c.enrolments {
			mustRecord(t, e, en, 13, 14)
		}
		completions, withdrawals := 0, 0
		for _, en := range c.enrolments {
			var wg sync.WaitGroup
			var cErr, wErr error
			wg.Go(func() { _, cErr = complete(e, en, passed) })
			wg.Go(func() { _, wErr = e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: en}) })
			wg.Wait()
			got, err := e.c.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: en})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case cErr == nil && wErr != nil && got.GetState() == enrolmentv1.Enrolment_STATE_COMPLETED:
				wantRule(t, wErr, "STATE")
				completions++
			case wErr == nil && cErr != nil && got.GetState() == enrolmentv1.Enrolment_STATE_WITHDRAWN:
				wantRule(t, cErr, "ENROLMENT_STATE")
				withdrawals++
			default:
				t.Fatalf("complete %v, withdraw %v, state %v", cErr, wErr, got.GetState())
			}
		}
		o, _ := e.c.GetOffering(ctx, &enrolmentv1.GetOfferingRequest{Name: c.offering})
		if o.GetEnrolledCount() != 0 {
			t.Fatalf("enrolled count %d with every enrolment completed or withdrawn", o.GetEnrolledCount())
		}
		if n := count(eventTypes(t, e), "enrolment.completed"); n != completions {
			t.Fatalf("%d completion events for %d completions", n, completions)
		}
		t.Logf("completions %d, withdrawals %d", completions, withdrawals)
	})
}
