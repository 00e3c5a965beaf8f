package enrolment_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc/codes"
)

const (
	present = enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT
	absent  = enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT
	excused = enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_EXCUSED
)

// duringCourse is the second day of the svets offerings (13–15 April
// 2026), at noon in Sweden.
var duringCourse = time.Date(2026, 4, 14, 10, 0, 0, 0, time.UTC)

// course is a svets offering of project (created if need be) with n
// participants enrolled (capacity seats, the rest waitlisted), started
// and, from then on, on its second day.
type course struct {
	offering   string
	enrolments []string
}

func runningCourse(t *testing.T, e env, id string, capacity int32, n int) course {
	t.Helper()
	e.clock.set(start)
	project := "projects/vk"
	if _, err := e.c.GetProject(ctx, &enrolmentv1.GetProjectRequest{Name: project}); err != nil {
		mustProject(t, e, vastkraft("vk"))
	}
	o := mustOffering(t, e, svets(id, project, capacity), true)
	c := course{offering: o.GetName()}
	for i := range n {
		p := mustParticipant(t, e, person(nthNumber(len(id)*1000+int(id[0])*37+i)))
		en, err := enrol(e, o.GetName(), p.GetName())
		if err != nil {
			t.Fatal(err)
		}
		c.enrolments = append(c.enrolments, en.GetName())
	}
	if _, err := e.c.StartOffering(ctx, &enrolmentv1.StartOfferingRequest{Name: o.GetName()}); err != nil {
		t.Fatal(err)
	}
	e.clock.set(duringCourse)
	return c
}

func record(e env, enrolment string, day int, st enrolmentv1.AttendanceStatus, hours float64) (*enrolmentv1.AttendanceRecord, error) {
	return e.c.RecordAttendance(ctx, &enrolmentv1.RecordAttendanceRequest{Name: enrolment, SessionDate: d(2026, 4, day), Status: st, Hours: hours})
}

func attendance(t *testing.T, e env, enrolment string) []*enrolmentv1.AttendanceRecord {
	t.Helper()
	l, err := e.c.ListAttendance(ctx, &enrolmentv1.ListAttendanceRequest{Parent: enrolment})
	if err != nil {
		t.Fatal(err)
	}
	return l.GetRecords()
}

// Recording a session: PRESENT for the whole session counts its hours;
// the same record again is the same result, written once; another status
// replaces it; the list is by session date.
func TestRecordAttendance(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := runningCourse(t, e, "svets", 5, 1)
		en := c.enrolments[0]
		r, err := record(e, en, 14, present, 0)
		if err != nil {
			t.Fatal(err)
		}
		if r.GetHours() != 8 || r.GetEnrolment() != en || r.GetRecordTime() == nil || r.GetStatus() != present {
			t.Fatalf("record %v", r)
		}
		events := count(eventTypes(t, e), "attendance.recorded")
		e.clock.tick()
		again, err := record(e, en, 14, present, 8)
		if err != nil {
			t.Fatal(err)
		}
		if !again.GetRecordTime().AsTime().Equal(r.GetRecordTime().AsTime()) || count(eventTypes(t, e), "attendance.recorded") != events {
			t.Fatalf("the same record again was written again: %v", again)
		}
		if _, err := record(e, en, 13, excused, 0); err != nil {
			t.Fatal(err)
		}
		e.clock.tick()
		if r, err = record(e, en, 14, present, 3.5); err != nil || r.GetHours() != 3.5 {
			t.Fatalf("%v %v", r, err)
		}
		list := attendance(t, e, en)
		if len(list) != 2 || list[0].GetSessionDate().GetDay() != 13 || list[0].GetStatus() != excused || list[0].GetHours() != 0 ||
			list[1].GetSessionDate().GetDay() != 14 || list[1].GetHours() != 3.5 {
			t.Fatalf("attendance %v", list)
		}
		if n := count(eventTypes(t, e), "attendance.recorded"); n != events+2 {
			t.Fatalf("%d attendance events, want %d", n, events+2)
		}
		_, err = e.c.ListAttendance(ctx, &enrolmentv1.ListAttendanceRequest{Parent: c.offering + "/enrolments/finns-inte"})
		wantCode(t, err, codes.NotFound)
	})
}

// Every rule refuses, naming the field or the rule, and writes nothing.
func TestRecordAttendanceRefusals(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		mustProject(t, e, vastkraft("vk"))
		// An offering whose sessions are held but which was never started.
		idle := mustOffering(t, e, svets("ostartad", "projects/vk", 5), true)
		idler, err := enrol(e, idle.GetName(), mustParticipant(t, e, person(nthNumber(900))).GetName())
		if err != nil {
			t.Fatal(err)
		}
		c := runningCourse(t, e, "svets", 2, 4) // two seats, two waitlisted
		if _, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: c.enrolments[1]}); err != nil {
			t.Fatal(err) // the first on the waitlist, c.enrolments[2], gets the seat
		}
		en, waiting, gone := c.enrolments[0], c.enrolments[3], c.enrolments[1]
		before := digest(t, e.rdb)

		_, err = record(e, en, 16, present, 0)
		testkit.WantBadRequest(t, err, "session_date") // not a session
		_, err = record(e, en, 12, present, 0)
		testkit.WantBadRequest(t, err, "session_date") // not a session
		_, err = record(e, en, 15, present, 0)
		testkit.WantBadRequest(t, err, "session_date") // tomorrow
		_, err = e.c.RecordAttendance(ctx, &enrolmentv1.RecordAttendanceRequest{Name: en, SessionDate: d(2026, 2, 30), Status: present})
		testkit.WantBadRequest(t, err, "session_date")
		_, err = record(e, en, 14, absent, 2)
		testkit.WantBadRequest(t, err, "hours")
		_, err = record(e, en, 14, excused, 1)
		testkit.WantBadRequest(t, err, "hours")
		_, err = record(e, en, 14, present, 9) // the session is 8 hours
		testkit.WantBadRequest(t, err, "hours")
		_, err = record(e, en, 14, enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_UNSPECIFIED, 0)
		testkit.WantBadRequest(t, err, "status")
		_, err = record(e, waiting, 14, present, 0)
		wantRule(t, err, "ENROLMENT_STATE")
		_, err = record(e, gone, 14, present, 0)
		wantRule(t, err, "ENROLMENT_STATE")
		_, err = record(e, idler.GetName(), 14, present, 0)
		wantRule(t, err, "OFFERING_STATE")
		_, err = record(e, c.offering+"/enrolments/finns-inte", 14, present, 0)
		wantCode(t, err, codes.NotFound)
		_, err = record(e, "offerings/finns-inte/enrolments/x", 14, present, 0)
		wantCode(t, err, codes.NotFound)
		if digest(t, e.rdb) != before {
			t.Fatal("a refused record wrote something")
		}
	})
}

func entry(enrolment string, day int, st enrolmentv1.AttendanceStatus, hours float64) *enrolmentv1.AttendanceEntry {
	return &enrolmentv1.AttendanceEntry{Enrolment: enrolment, SessionDate: d(2026, 4, day), Status: st, Hours: hours}
}

// A batch is all or nothing: one bad record refuses it, naming the record
// by its index, and nothing is written; a good one records every record.
func TestBatchRecordAttendance(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := runningCourse(t, e, "svets", 3, 4)
		other := runningCourse(t, e, "annan", 3, 1)
		batch := func(records ...*enrolmentv1.AttendanceEntry) (*enrolmentv1.BatchRecordAttendanceResponse, error) {
			return e.c.BatchRecordAttendance(ctx, &enrolmentv1.BatchRecordAttendanceRequest{Offering: c.offering, Records: records})
		}
		good := []*enrolmentv1.AttendanceEntry{entry(c.enrolments[0], 13, present, 0), entry(c.enrolments[1], 13, absent, 0),
			entry(c.enrolments[2], 13, present, 4), entry(c.enrolments[0], 14, excused, 0)}
		before := digest(t, e.rdb)
		for _, bad := range []struct {
			swap  *enrolmentv1.AttendanceEntry
			field string
			rule  string
		}{
			{entry(c.enrolments[2], 15, present, 0), "records[2].session_date", ""},
			{entry(c.enrolments[2], 11, present, 0), "records[2].session_date", ""},
			{entry(c.enrolments[2], 13, absent, 1), "records[2].hours", ""},
			{entry(c.enrolments[0], 13, absent, 0), "records[2].session_date", ""}, // the same as records[0]
			{entry(other.enrolments[0], 13, present, 0), "records[2].enrolment", ""},
			{entry(c.offering+"/enrolments/finns-inte", 13, present, 0), "records[2].enrolment", ""},
			{entry(c.enrolments[3], 13, present, 0), "", "ENROLMENT_STATE"}, // waitlisted
		} {
			records := append([]*enrolmentv1.AttendanceEntry{}, good...)
			records[2] = bad.swap
			_, err := batch(records...)
			if bad.rule != "" {
				wantRule(t, err, bad.rule)
				if !strings.Contains(err.Error(), "records[2]") {
					t.Errorf("the refusal does not name records[2]: %v", err)
				}
			} else {
				testkit.WantBadRequest(t, err, bad.field)
			}
			if digest(t, e.rdb) != before {
				t.Fatalf("a refused batch (%s%s) wrote something", bad.field, bad.rule)
			}
		}
		resp, err := batch(good...)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetRecords()) != 4 || resp.GetRecords()[0].GetHours() != 8 || resp.GetRecords()[2].GetHours() != 4 ||
			resp.GetRecords()[3].GetEnrolment() != c.enrolments[0] {
			t.Fatalf("batch %v", resp)
		}
		if got := attendance(t, e, c.enrolments[0]); len(got) != 2 || got[1].GetStatus() != excused {
			t.Fatalf("attendance %v", got)
		}
		_, err = e.c.BatchRecordAttendance(ctx, &enrolmentv1.BatchRecordAttendanceRequest{Offering: c.offering})
		testkit.WantBadRequest(t, err, "records")
	})
}

// Many recordings of one session at once leave one record, one of those
// asked for; a batch racing with a withdrawal of one of its enrolments
// either lands whole before it or writes nothing.
func TestAttendanceUnderConcurrency(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := runningCourse(t, e, "svets", 30, 30)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if _, err := record(e, c.enrolments[0], 14, present, float64(1+i%8)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got := attendance(t, e, c.enrolments[0])
		if len(got) != 1 || got[0].GetHours() < 1 || got[0].GetHours() > 8 {
			t.Fatalf("attendance after concurrent records %v", got)
		}
		fields, _ := e.rdb.HKeys(ctx, enrolmentKeyOf(c.enrolments[0])).Result()
		n := 0
		for _, f := range fields {
			if strings.HasPrefix(f, "att:") {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d attendance fields %v", n, fields)
		}

		landed, refused := 0, 0
		for round := range 14 {
			a, b := c.enrolments[2*round+1], c.enrolments[2*round+2]
			var batchErr error
			wg.Go(func() {
				_, batchErr = e.c.BatchRecordAttendance(ctx, &enrolmentv1.BatchRecordAttendanceRequest{Offering: c.offering,
					Records: []*enrolmentv1.AttendanceEntry{entry(a, 13, present, 0), entry(b, 13, present, 0)}})
			})
			wg.Go(func() {
				if _, err := e.c.WithdrawEnrolment(ctx, &enrolmentv1.WithdrawEnrolmentRequest{Name: b}); err != nil {
					t.Error(err)
				}
			})
			wg.Wait()
			na, nb := len(attendance(t, e, a)), len(attendance(t, e, b))
			switch {
			case batchErr == nil && na == 1 && nb == 1:
				landed++
			case batchErr != nil && na == 0 && nb == 0:
				wantRule(t, batchErr, "ENROLMENT_STATE")
				refused++
			default:
				t.Fatalf("round %d: batch %v, records %d and %d", round, batchErr, na, nb)
			}
		}
		t.Logf("batches that landed before the withdrawal: %d, refused after it: %d", landed, refused)
	})
}

// enrolmentKeyOf is the Redis key of an enrolment name.
func enrolmentKeyOf(name string) string {
	parts := strings.Split(name, "/")
	return fmt.Sprintf("kn:{enrolment}:enrolment:%s:%s", parts[1], parts[3])
}
