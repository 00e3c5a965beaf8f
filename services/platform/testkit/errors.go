package testkit

import (
	"slices"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// WantBadRequest fails t unless err is INVALID_ARGUMENT carrying a
// google.rpc.BadRequest that names every one of fields, the API's promise
// for every bad field. It returns the status message, for further checks.
func WantBadRequest(t testing.TB, err error, fields ...string) string {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("want INVALID_ARGUMENT naming %v, got %v", fields, err)
	}
	named := BadRequestFields(err)
	for _, f := range fields {
		if !slices.Contains(named, f) {
			t.Fatalf("BadRequest names %q, want %q among them (%v)", named, f, err)
		}
	}
	return st.Message()
}

// BadRequestFields is the fields named by the google.rpc.BadRequest details
// of err, in order; nil if it has none.
func BadRequestFields(err error) []string {
	var fields []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

// WantPreconditionFailure fails t unless err is FAILED_PRECONDITION
// carrying a google.rpc.PreconditionFailure with a violation about subject
// (the API's promise for a wrong state), and returns that violation.
func WantPreconditionFailure(t testing.TB, err error, subject string) *errdetails.PreconditionFailure_Violation {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.FailedPrecondition {
		t.Fatalf("want FAILED_PRECONDITION about %s, got %v", subject, err)
	}
	var subjects []string
	for _, d := range st.Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok {
			for _, v := range pf.GetViolations() {
				if v.GetSubject() == subject {
					return v
				}
				subjects = append(subjects, v.GetSubject())
			}
		}
	}
	t.Fatalf("PreconditionFailure is about %q, want %q among them (%v)", subjects, subject, err)
	return nil
}
