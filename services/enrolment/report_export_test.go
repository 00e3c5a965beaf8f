package enrolment

import (
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
