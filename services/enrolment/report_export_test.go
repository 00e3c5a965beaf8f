package enrolment

import (
	"context"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
)

// What report_bench_test.go needs to write the stored form of enrolments
// and outcomes directly (a bulk pipeline, not the service's steps, so
// that loading 10⁵ participants takes seconds).

// BenchEnrolmentKey is an enrolment's hash.
func BenchEnrolmentKey(offering, id string) string { return enrolmentKey(offering, id) }

// BenchEnrolmentIndex is every index membership of an enrolment.
func BenchEnrolmentIndex(e *enrolmentv1.Enrolment) []store.IndexEntry {
	return enrolmentIndex.Entries(Keyspace, e)
}

// BenchOutcome is the hash and field of a participant's outcome.
func BenchOutcome(participantID, projectID string, t enrolmentv1.OutcomeTiming) (key, field string) {
	return outcomeKey(participantID), outcomeField(projectID, t)
}

// BenchSnapshotField is the enrolment hash's field of its snapshot.
const BenchSnapshotField = fieldSnapshot

// ReportOnDemand is the report computed from the enrolments themselves
// (report_ondemand_test.go), for comparison with GetProjectReport's.
func (s *Service) ReportOnDemand(ctx context.Context, project string) (*enrolmentv1.ProjectReport, error) {
	return s.projectReportOnDemand(ctx, &enrolmentv1.GetProjectReportRequest{Name: project})
}

// BenchFactsKey is the hash of a project's report facts.
func BenchFactsKey(projectID string) string { return factsKey(projectID) }

// BenchEnrolmentFacts is the facts rows of an enrolment with its snapshot
// and its attendance (statuses of its offering's sessions in order, 0 for
// none recorded), as field, value pairs.
func BenchEnrolmentFacts(e *enrolmentv1.Enrolment, sn *enrolmentv1.EnrolmentSnapshot, attendance []enrolmentv1.AttendanceStatus) []any {
	o, id, _ := parseEnrolmentName("", e.GetName())
	out := []any{enrolmentFactField(o, id), enrolmentFacts(e, snapshotOf(sn))}
	row := ""
	for i, st := range attendance {
		if st != enrolmentv1.AttendanceStatus_ATTENDANCE_STATUS_UNSPECIFIED {
			row = withAttendance(row, o+"/"+id, len(attendance), i, st)
		}
	}
	if row != "" {
		out = append(out, attendanceFactField(o, id), row)
	}
	return out
}

// BenchOutcomeFact is the facts row of a participant's outcome.
func BenchOutcomeFact(participantID string, t enrolmentv1.OutcomeTiming, o enrolmentv1.Outcome) (field, value string) {
	return outcomeFact(participantID, t, o)
}

// ScanFacts makes reports read every project's facts with HSCAN, in
// chunks of n, until the returned func is called.
func ScanFacts(n int64) (restore func()) {
	all, chunk := factsGetAll.Load(), factsChunk.Load()
	factsGetAll.Store(-1)
	factsChunk.Store(n)
	return func() { factsGetAll.Store(all); factsChunk.Store(chunk) }
}
