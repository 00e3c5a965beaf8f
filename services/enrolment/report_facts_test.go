package enrolment_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// The report is computed from the project's facts (facts.go), kept in the
// steps that write what they copy. It must be the report computed from the
// enrolments, snapshots, attendance and outcomes themselves, byte for
// byte, after any sequence of calls, concurrent ones included: a random
// one here, through the RPCs, checked after every phase, and again after
// the facts are thrown away and rebuilt by the migration.
func TestReportFactsMatchOnDemand(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		rng := rand.New(rand.NewPCG(13, 2026))
		e.clock.set(start)
		projects := []string{mustProject(t, e, vastkraft("fa")).GetName(), mustProject(t, e, vastkraft("fb")).GetName()}
		var offerings []string
		for i := range 5 {
			o := mustOffering(t, e, svets(fmt.Sprintf("fo-%d", i), projects[i/4], int32(2+i%3)), true)
			offerings = append(offerings, o.GetName())
		}
		genders := []enrolmentv1.Gender{woman, man, nonBinary}
		statuses := []enrolmentv1.LabourMarketStatus{atRisk, notified, furloughed, laidOff, jobSeeker}
		levels := []enrolmentv1.EducationLevel{isced02, isced34, isced58}
		employers := []string{"", "companies/volvo-cars", "companies/skf"}
		var people []string
		for i := range 30 {
			p := person(nthNumber(7000 + i*131))
			p.Gender, p.LabourMarketStatus, p.EducationLevel = genders[i%3], statuses[i%5], levels[i%3]
			p.Municipality, p.Employer = gr[i%len(gr)], employers[i%3]
			people = append(people, mustParticipant(t, e, p).GetName())
		}

		check := func(phase string) {
			t.Helper()
			for _, project := range projects {
				got, err := e.c.GetProjectReport(ctx, &enrolmentv1.GetProjectReportRequest{Name: project})
				if err != nil {
					t.Fatal(err)
				}
				want, err := e.svc.ReportOnDemand(ctx, project)
				if err != nil {
					t.Fatal(err)
				}
				// A big project's facts are read in chunks: the same.
				restore := enrolment.ScanFacts(5)
				scanned, err := e.c.GetProjectReport(ctx, &enrolmentv1.GetProjectReportRequest{Name: project})
				restore()
				if err != nil {
					t.Fatal(err)
				}
				got.ComputeTime, want.ComputeTime, scanned.ComputeTime = nil, nil, nil
				gb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(got)
				wb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(want)
				sb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(scanned)
				if !bytes.Equal(gb, wb) {
					t.Fatalf("%s, %s: the report from the facts\n%v\nis not the one computed from the enrolments\n%v", phase, project, got, want)
				}
				if !bytes.Equal(sb, wb) {
					t.Fatalf("%s, %s: the report from the facts read in chunks\n%v\nis not the one computed from the enrolments\n%v", phase, project, scanned, want)
				}
			}
		}
		// Calls refused by the rules (a full waitlist's withdrawal, a
		// completion before attendance…) are part of a random sequence;
		// anything else fails the test.
		var mu sync.Mutex
		ok := func(err error) bool {
			if err == nil {
				return true
			}
			switch status.Code(err) {
			case codes.FailedPrecondition, codes.AlreadyExists, codes.Aborted, codes.NotFound:
				return false
			}
			t.Error(err)
			return false
		}
		var enrolments []string
		parallel := func(n int, op func(r *rand.Rand)) {
			var wg sync.WaitGroup
			for w := range 6 {
				r := rand.New(rand.NewPCG(uint64(w), rng.Uint64()))
				wg.Go(func() {
					for range n {
						op(r)
					}
				})
			}
			wg.Wait()
		}
		pick := func(r *rand.Rand) string {
			mu.Lock()
			defer mu.Unlock()
			if len(enrolments) == 0 {
				return ""
			}
			return enrolments[r.IntN(len(enrolments))]
		}

		// Enrolling (seats, then the waitlist) and withdrawing (with the
		// first waitlisted promoted), at once.
		parallel(12, func(r *rand.Rand) {
			if r.IntN(4) == 0 {
				if en := pick(r); en != "" {
					_, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: en})
					ok(err)
				}
				return
			}
			en, err := enrol(e, offerings[r.IntN(len(offerings))], people[r.IntN(len(people))])
			if ok(err) {
				mu.Lock()
				enrolments = append(enrolments, en.GetName())
				mu.Unlock()
			}
		})
		// A participant's status changes after enrolling: the report keeps
		// what they were then.
		if _, err := e.c.UpdateParticipant(ctx, &enrolmentv1.UpdateParticipantRequest{
			Participant: &enrolmentv1.Participant{Name: people[0], LabourMarketStatus: laidOff, Municipality: "1482"},
			UpdateMask:  &fieldmaskpb.FieldMask{Paths: []string{"labour_market_status", "municipality"}}}); err != nil {
			t.Fatal(err)
		}
		check("enrolled and withdrawn")

		for _, o := range offerings {
			if _, err := e.c.StartOffering(ctx, &enrolmentv1.StartOfferingRequest{Name: o}); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.set(time.Date(2026, 4, 15, 10, 0, 0, 0, time.UTC))
		statusesOf := []enrolmentv1.AttendanceStatus{present, enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT,
			enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_EXCUSED}
		// Attendance, the same sessions re-recorded at once, whole
		// sessions in bulk, and withdrawals while the courses run.
		parallel(25, func(r *rand.Rand) {
			switch r.IntN(8) {
			case 0:
				if en := pick(r); en != "" {
					_, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: en})
					ok(err)
				}
			case 1:
				o := offerings[r.IntN(len(offerings))]
				l, err := e.c.ListEnrolments(ctx, &enrolmentv1.ListEnrolmentsRequest{Parent: o, Filter: "state = STATE_ENROLLED"})
				if !ok(err) || len(l.GetEnrolments()) == 0 {
					return
				}
				var recs []*enrolmentv1.AttendanceEntry
				day := 13 + r.IntN(3)
				for _, en := range l.GetEnrolments() {
					recs = append(recs, entry(en.GetName(), day, statusesOf[r.IntN(3)], 0))
				}
				_, err = e.c.BatchRecordAttendance(ctx, &enrolmentv1.BatchRecordAttendanceRequest{Offering: o, Records: recs})
				ok(err)
			default:
				if en := pick(r); en != "" {
					_, err := record(e, en, 13+r.IntN(3), statusesOf[r.IntN(3)], 0)
					ok(err)
				}
			}
		})
		check("attendance recorded")

		// Completions (with every session recorded first) and outcomes at
		// exit, some recorded twice, at once.
		results := []enrolmentv1.Enrolment_Result{passed, enrolmentv1.Enrolment_RESULT_FAILED, enrolmentv1.Enrolment_RESULT_NOT_ASSESSED}
		parallel(10, func(r *rand.Rand) {
			en := pick(r)
			if en == "" {
				return
			}
			if r.IntN(3) > 0 {
				for day := 13; day <= 15; day++ {
					if _, err := record(e, en, day, statusesOf[r.IntN(3)], 0); !ok(err) {
						return
					}
				}
				_, err := complete(e, en, results[r.IntN(3)])
				ok(err)
				return
			}
			got, err := e.c.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: en})
			if !ok(err) {
				return
			}
			_, err = e.c.RecordOutcome(ctx, &enrolmentv1.RecordOutcomeRequest{Participant: got.GetParticipant(), Project: got.GetProject(),
				Timing: atExit, Outcome: enrolmentv1.Outcome(1 + r.IntN(7)), Date: d(2026, 4, 15)})
			ok(err)
		})
		check("completed, outcomes at exit")

		e.clock.set(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC))
		parallel(6, func(r *rand.Rand) {
			en := pick(r)
			if en == "" {
				return
			}
			got, err := e.c.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: en})
			if !ok(err) {
				return
			}
			_, err = e.c.RecordOutcome(ctx, &enrolmentv1.RecordOutcomeRequest{Participant: got.GetParticipant(), Project: got.GetProject(),
				Timing: atSix, Outcome: enrolmentv1.Outcome(1 + r.IntN(7)), Date: d(2026, 10, 20)})
			ok(err)
		})
		check("outcomes at six months")

		before := map[string]*enrolmentv1.ProjectReport{}
		for _, p := range projects {
			before[p] = reportOf(t, e, p)
		}
		var wg sync.WaitGroup
		for _, p := range people[:10] {
			wg.Go(func() {
				_, err := erase(e, p)
				ok(err)
			})
		}
		wg.Wait()
		check("erased")
		for _, p := range projects {
			if got := reportOf(t, e, p); !proto.Equal(got, before[p]) {
				t.Fatalf("%s changed with the erasures:\n%v\nwas\n%v", p, got, before[p])
			}
		}

		// Something of each kind was counted, or the comparison proves
		// little.
		r := before[projects[0]]
		if r.GetParticipants() < 5 || r.GetSessionsRecorded() == 0 || r.GetSessionsPresent() == 0 {
			t.Fatalf("too little happened to compare: %v", r)
		}
		kinds := map[string]bool{}
		for _, b := range r.GetBreakdowns() {
			for _, c := range b.GetCounts() {
				kinds[b.GetDimension()+"="+c.GetValue()] = true
			}
		}
		for _, k := range []string{"enrolment_state=STATE_WAITLISTED", "enrolment_state=STATE_WITHDRAWN", "enrolment_state=STATE_COMPLETED"} {
			if !kinds[k] {
				t.Errorf("no %s in the random run: %v", k, r)
			}
		}
		if len(r.GetBreakdowns()[8].GetCounts()) == 0 || len(r.GetBreakdowns()[9].GetCounts()) == 0 {
			t.Errorf("no outcomes in the random run: %v", r)
		}

		// An existing deployment has no facts: the migration writes them.
		for _, p := range projects {
			if err := e.rdb.Del(ctx, enrolment.BenchFactsKey(p[len("projects/"):])).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.rdb.Del(ctx, enrolment.Keyspace.Key("migration", "reportfacts")).Err(); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		check("facts rebuilt")
		for _, p := range projects {
			if got := reportOf(t, e, p); !proto.Equal(got, before[p]) {
				t.Fatalf("%s rebuilt:\n%v\nwas\n%v", p, got, before[p])
			}
		}
	})
}

func reportOf(t *testing.T, e env, project string) *enrolmentv1.ProjectReport {
	t.Helper()
	r, err := e.c.GetProjectReport(ctx, &enrolmentv1.GetProjectReportRequest{Name: project})
	if err != nil {
		t.Fatal(err)
	}
	r.ComputeTime = nil
	return r
}
