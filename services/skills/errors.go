package skills

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// wrongState is FAILED_PRECONDITION with a PreconditionFailure naming the
// resource and what it is.
func wrongState(subject, typ, description string) error {
	st := status.New(codes.FailedPrecondition, description)
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: typ, Subject: subject, Description: description},
	}}); err == nil {
		st = d
	}
	return st.Err()
}
