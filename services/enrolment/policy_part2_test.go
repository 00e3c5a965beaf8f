package enrolment_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"google.golang.org/genproto/googleapis/type/timeofday"
)

// rowsElsewhere are RPCs whose matrix rows come with their handlers from
// another branch (the project report's, enrolreport); the matrix says so
// rather than failing for them.
var rowsElsewhere = map[string]string{
	"GetProjectReport": "the project report's branch (enrolreport) adds its row with its handler",
	"EraseParticipant": "pending",
}

// runningToday makes, as staff, an offering of the side's provider whose
// first session is today (the matrix's clock stays on 2 March 2026), with
// one participant enrolled, and starts it. It returns the enrolment.
func (w *world) runningToday(t *testing.T, side int) string {
	t.Helper()
	req := svets(fmt.Sprintf("o%03d", w.next()), w.project, 10)
	req.Offering.RegistrationDeadline = d(2026, 3, 2)
	req.Offering.Sessions = []*enrolmentv1.Session{today(2), today(3), today(4)}
	if side == 1 {
		req.Offering.CallOff, req.Offering.Sessions = "callOffs/cnc", req.Offering.Sessions[:1]
	}
	o := mustOffering(t, w.e, req, true)
	en := w.enrolment(t, o.GetName())
	if _, err := w.e.c.StartOffering(ctx, &enrolmentv1.StartOfferingRequest{Name: o.GetName()}); err != nil {
		t.Fatal(err)
	}
	return en
}

func today(day int) *enrolmentv1.Session {
	return &enrolmentv1.Session{Date: d(2026, 3, day), StartTime: &timeofday.TimeOfDay{Hours: 8}, EndTime: &timeofday.TimeOfDay{Hours: 12},
		Location: "Lindholmen, Göteborg"}
}

func init() {
	matrix = append(matrix,
		matrixRow{"RecordAttendance", func(t *testing.T, w *world, side int) string { return w.runningToday(t, side) },
			func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
				return err1(c.RecordAttendance(ctx, &enrolmentv1.RecordAttendanceRequest{Name: name, SessionDate: d(2026, 3, 2),
					Status: enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT}))
			}, staffAndOwnProvider, false},
		matrixRow{"BatchRecordAttendance", func(t *testing.T, w *world, side int) string { return w.runningToday(t, side) },
			func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
				return err1(c.BatchRecordAttendance(ctx, &enrolmentv1.BatchRecordAttendanceRequest{Offering: name[:strings.Index(name, "/enrolments/")],
					Records: []*enrolmentv1.AttendanceEntry{{Enrolment: name, SessionDate: d(2026, 3, 2),
						Status: enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_ABSENT}}}))
			}, staffAndOwnProvider, false},
		matrixRow{"ListAttendance", func(t *testing.T, w *world, side int) string { return w.runningToday(t, side) },
			func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
				return err1(c.ListAttendance(ctx, &enrolmentv1.ListAttendanceRequest{Parent: name}))
			}, staffAndOwnProvider, false},
		matrixRow{"CompleteEnrolment", func(t *testing.T, w *world, side int) string {
			en := w.runningToday(t, side)
			if _, err := w.e.c.RecordAttendance(ctx, &enrolmentv1.RecordAttendanceRequest{Name: en, SessionDate: d(2026, 3, 2),
				Status: enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_PRESENT}); err != nil {
				t.Fatal(err)
			}
			return en
		}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
			return err1(c.CompleteEnrolment(ctx, &enrolmentv1.CompleteEnrolmentRequest{Name: name, Result: enrolmentv1.Enrolment_RESULT_PASSED}))
		}, staffAndOwnProvider, false},
		matrixRow{"RecordOutcome", func(t *testing.T, w *world, side int) string {
			return participantOf(t, w.e, w.runningToday(t, side))
		}, func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
			return err1(c.RecordOutcome(ctx, &enrolmentv1.RecordOutcomeRequest{Participant: name, Project: "projects/vk",
				Timing: enrolmentv1.OutcomeTiming_OUTCOME_TIMING_EXIT, Outcome: enrolmentv1.Outcome_OUTCOME_KEPT_JOB, Date: d(2026, 3, 2)}))
		}, onlyStaff, false},
		matrixRow{"ListParticipantOutcomes", func(t *testing.T, w *world, _ int) string { return w.participant(t).GetName() },
			func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
				return err1(c.ListParticipantOutcomes(ctx, &enrolmentv1.ListParticipantOutcomesRequest{Parent: name}))
			}, onlyStaff, false},
		matrixRow{"EraseParticipant", func(t *testing.T, w *world, _ int) string { return w.participant(t).GetName() },
			func(ctx context.Context, c enrolmentv1.EnrolmentServiceClient, name string) error {
				return err1(c.EraseParticipant(ctx, &enrolmentv1.EraseParticipantRequest{Name: name, Reason: "Begäran enligt art. 17"}))
			}, onlyStaff, false},
	)
}
