package enrolment_test

import (
	"sync"
	"testing"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

const (
	atExit  = enrolmentv1.OutcomeTiming_OUTCOME_TIMING_EXIT
	atSix   = enrolmentv1.OutcomeTiming_OUTCOME_TIMING_SIX_MONTHS
	newJob  = enrolmentv1.Outcome_OUTCOME_NEW_JOB
	keptJob = enrolmentv1.Outcome_OUTCOME_KEPT_JOB
	studies = enrolmentv1.Outcome_OUTCOME_STUDIES
)

func outcome(e env, participant string, timing enrolmentv1.OutcomeTiming, what enrolmentv1.Outcome, y, m, day int) (*enrolmentv1.ParticipantOutcome, error) {
	return e.c.RecordOutcome(ctx, &enrolmentv1.RecordOutcomeRequest{Participant: participant, Project: "projects/vk", Timing: timing,
		Outcome: what, Date: d(y, m, day)})
}

func participantOf(t *testing.T, e env, enrolment string) string {
	t.Helper()
	en, err := e.c.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: enrolment})
	if err != nil {
		t.Fatal(err)
	}
	return en.GetParticipant()
}

// completeAll records every session of the svets course and completes
// each enrolment, on its last day (15 April 2026).
func completeAll(t *testing.T, e env, enrolments ...string) {
	t.Helper()
	e.clock.set(time.Date(2026, 4, 15, 10, 0, 0, 0, time.UTC))
	for _, en := range enrolments {
		mustRecord(t, e, en, 13, 14, 15)
		if _, err := complete(e, en, passed); err != nil {
			t.Fatal(err)
		}
	}
}

// Outcomes: one per participant, project and timing, replaced with
// outcome.updated; a six-month outcome six months after the exit outcome,
// or the last completion without one; each refusal naming its rule, and
// nothing written by it.
func TestRecordOutcome(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		elsewhere := mustProject(t, e, vastkraft("annat"))
		o := mustOffering(t, e, svets("annat", elsewhere.GetName(), 2), true)
		otherProject := mustParticipant(t, e, person(nthNumber(77)))
		if _, err := enrol(e, o.GetName(), otherProject.GetName()); err != nil {
			t.Fatal(err)
		}
		c := runningCourse(t, e, "svets", 4, 5) // four seats, one waitlisted
		a, dd, withdrawnOne := participantOf(t, e, c.enrolments[0]), participantOf(t, e, c.enrolments[1]), participantOf(t, e, c.enrolments[2])
		if _, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: c.enrolments[2]}); err != nil {
			t.Fatal(err)
		}
		waiting2 := runningCourse(t, e, "annan", 1, 2)
		onlyWaits := participantOf(t, e, waiting2.enrolments[1])
		completeAll(t, e, c.enrolments[0], c.enrolments[1])
		e.clock.set(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))

		exit, err := outcome(e, a, atExit, newJob, 2026, 4, 15)
		if err != nil {
			t.Fatal(err)
		}
		if exit.GetName() != a+"/outcomes/vk-exit" || exit.GetProject() != "projects/vk" || exit.GetTiming() != atExit ||
			exit.GetOutcome() != newJob || exit.GetCreateTime() == nil || exit.GetEtag() == "" {
			t.Fatalf("exit outcome %v", exit)
		}
		if ev, data := lastEvent(t, e, "outcome.recorded", &enrolmentv1.ParticipantOutcome{}); ev.GetSubject() != exit.GetName() || !proto.Equal(data, exit) {
			t.Fatalf("event %v %v", ev, data)
		}
		before := digest(t, e.rdb)
		_, err = outcome(e, a, atSix, keptJob, 2026, 10, 14)
		wantRule(t, err, "SIX_MONTHS_AFTER_EXIT")
		_, err = outcome(e, a, atSix, keptJob, 2026, 11, 21) // tomorrow
		testkit.WantBadRequest(t, err, "date")
		_, err = outcome(e, a, atSix, keptJob, 2026, 2, 29)
		testkit.WantBadRequest(t, err, "date")
		_, err = outcome(e, onlyWaits, atExit, newJob, 2026, 5, 1)
		wantRule(t, err, "ENROLMENT_IN_PROJECT")
		_, err = outcome(e, otherProject.GetName(), atExit, newJob, 2026, 5, 1)
		wantRule(t, err, "ENROLMENT_IN_PROJECT")
		_, err = outcome(e, "participants/finns-inte", atExit, newJob, 2026, 5, 1)
		wantCode(t, err, codes.NotFound)
		_, err = e.c.RecordOutcome(ctx, &enrolmentv1.RecordOutcomeRequest{Participant: a, Project: "projects/finns-inte", Timing: atExit,
			Outcome: newJob, Date: d(2026, 5, 1)})
		testkit.WantBadRequest(t, err, "project")
		_, err = e.c.RecordOutcome(ctx, &enrolmentv1.RecordOutcomeRequest{Participant: a, Project: "projects/vk", Timing: atExit, Date: d(2026, 5, 1)})
		testkit.WantBadRequest(t, err, "outcome")
		// Six months after the completion, for one without an exit outcome.
		_, err = outcome(e, dd, atSix, studies, 2026, 10, 14)
		wantRule(t, err, "SIX_MONTHS_AFTER_EXIT")
		// Without an exit outcome or a completion there is nothing to count from.
		_, err = outcome(e, withdrawnOne, atSix, studies, 2026, 11, 1)
		wantRule(t, err, "SIX_MONTHS_AFTER_EXIT")
		if digest(t, e.rdb) != before {
			t.Fatal("a refused outcome wrote something")
		}

		six, err := outcome(e, a, atSix, keptJob, 2026, 10, 15)
		if err != nil || six.GetName() != a+"/outcomes/vk-six-months" {
			t.Fatalf("%v %v", six, err)
		}
		if _, err := outcome(e, dd, atSix, studies, 2026, 10, 15); err != nil {
			t.Fatal(err)
		}
		// An exit moved later than six months before the six-month outcome
		// is refused; moved earlier, it replaces the first.
		_, err = outcome(e, a, atExit, newJob, 2026, 4, 16)
		wantRule(t, err, "SIX_MONTHS_AFTER_EXIT")
		e.clock.tick()
		moved, err := outcome(e, a, atExit, studies, 2026, 4, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !moved.GetCreateTime().AsTime().Equal(exit.GetCreateTime().AsTime()) || moved.GetUpdateTime().AsTime().Equal(exit.GetUpdateTime().AsTime()) ||
			moved.GetEtag() == exit.GetEtag() || moved.GetOutcome() != studies {
			t.Fatalf("replaced %v, first %v", moved, exit)
		}
		if ev, data := lastEvent(t, e, "outcome.updated", &enrolmentv1.ParticipantOutcome{}); ev.GetSubject() != exit.GetName() || !proto.Equal(data, moved) {
			t.Fatalf("event %v %v", ev, data)
		}
		types := eventTypes(t, e)
		if count(types, "outcome.recorded") != 3 || count(types, "outcome.updated") != 1 {
			t.Fatalf("events %v", types)
		}
		list, err := e.c.ListParticipantOutcomes(ctx, &enrolmentv1.ListParticipantOutcomesRequest{Parent: a})
		if err != nil || len(list.GetOutcomes()) != 2 || !proto.Equal(list.GetOutcomes()[0], moved) || !proto.Equal(list.GetOutcomes()[1], six) {
			t.Fatalf("outcomes %v %v", list, err)
		}
		_, err = e.c.ListParticipantOutcomes(ctx, &enrolmentv1.ListParticipantOutcomesRequest{Parent: "participants/finns-inte"})
		wantCode(t, err, codes.NotFound)

		// A withdrawal is an exit too; six months after 31 August is the
		// last day of February.
		e.clock.set(time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC))
		if _, err := outcome(e, withdrawnOne, atExit, enrolmentv1.Outcome_OUTCOME_JOB_SEEKING, 2026, 8, 31); err != nil {
			t.Fatal(err)
		}
		_, err = outcome(e, withdrawnOne, atSix, newJob, 2027, 2, 27)
		wantRule(t, err, "SIX_MONTHS_AFTER_EXIT")
		if _, err := outcome(e, withdrawnOne, atSix, newJob, 2027, 2, 28); err != nil {
			t.Fatal(err)
		}
	})
}

// An exit and a six-month outcome recorded at once that are each right
// alone but not together: exactly one is recorded.
func TestOutcomesUnderConcurrency(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		const n = 10
		c := runningCourse(t, e, "svets", n, n)
		completeAll(t, e, c.enrolments...)
		e.clock.set(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
		exits, sixes := 0, 0
		for _, en := range c.enrolments {
			p := participantOf(t, e, en)
			var wg sync.WaitGroup
			var exitErr, sixErr error
			// Alone, each is right: the six-month outcome is six months
			// after the completion (15 April), the exit has no six-month
			// outcome yet. Together the six-month one is too early.
			wg.Go(func() { _, exitErr = outcome(e, p, atExit, newJob, 2026, 5, 1) })
			wg.Go(func() { _, sixErr = outcome(e, p, atSix, keptJob, 2026, 10, 16) })
			wg.Wait()
			list, err := e.c.ListParticipantOutcomes(ctx, &enrolmentv1.ListParticipantOutcomesRequest{Parent: p})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case exitErr == nil && sixErr != nil && len(list.GetOutcomes()) == 1 && list.GetOutcomes()[0].GetTiming() == atExit:
				wantRule(t, sixErr, "SIX_MONTHS_AFTER_EXIT")
				exits++
			case sixErr == nil && exitErr != nil && len(list.GetOutcomes()) == 1 && list.GetOutcomes()[0].GetTiming() == atSix:
				wantRule(t, exitErr, "SIX_MONTHS_AFTER_EXIT")
				sixes++
			default:
				t.Fatalf("exit %v, six months %v, stored %v", exitErr, sixErr, list.GetOutcomes())
			}
		}
		t.Logf("exit first %d, six months first %d", exits, sixes)
	})
}
