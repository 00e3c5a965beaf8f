// Package apierr builds the API's error statuses, so that every service
// reports a bad field the same way: INVALID_ARGUMENT with a
// google.rpc.BadRequest naming each field, which the gateway turns into an
// HTTP 400 with the same details.
package apierr

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Violations collects bad fields; the zero value is ready to use.
type Violations struct {
	list []*errdetails.BadRequest_FieldViolation
}

// Add records that field (a request field path, e.g. "need.municipalities[2]")
// is wrong, and why.
func (v *Violations) Add(field, format string, args ...any) {
	v.list = append(v.list, &errdetails.BadRequest_FieldViolation{
		Field:       field,
		Description: fmt.Sprintf(format, args...),
	})
}

// Empty reports whether no violation was added.
func (v *Violations) Empty() bool { return len(v.list) == 0 }

// Err is nil without violations, else INVALID_ARGUMENT with a BadRequest.
func (v *Violations) Err() error {
	if v.Empty() {
		return nil
	}
	parts := make([]string, 0, len(v.list))
	for _, f := range v.list {
		parts = append(parts, f.Field+": "+f.Description)
	}
	st := status.New(codes.InvalidArgument, "invalid request: "+strings.Join(parts, "; "))
	if d, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: v.list}); err == nil {
		st = d
	}
	return st.Err()
}

// Field is a one-field INVALID_ARGUMENT.
func Field(field, format string, args ...any) error {
	var v Violations
	v.Add(field, format, args...)
	return v.Err()
}

// AddValidation adds the violations of a protovalidate error, each field
// path prefixed with prefix (e.g. "council" when the message validated was
// the request's council). It returns err unchanged if it is not a
// validation error (a rule that failed to compile, say).
func (v *Violations) AddValidation(err error, prefix string) error {
	var ve *protovalidate.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	for _, viol := range ve.Violations {
		field := protovalidate.FieldPathString(viol.Proto.GetField())
		if prefix != "" {
			if field == "" {
				field = prefix
			} else {
				field = prefix + "." + field
			}
		}
		v.Add(field, "%s", viol.Proto.GetMessage())
	}
	return nil
}

// NotFound is NOT_FOUND naming the resource.
func NotFound(name string) error {
	return status.Errorf(codes.NotFound, "%s not found", name)
}

// FailedPrecondition is FAILED_PRECONDITION with a reason a person can act
// on, and the google.rpc.PreconditionFailure the API conventions promise
// for a wrong state, for programs: one violation of type StateViolation
// whose description is the message and whose subject is the first argument
// that is a resource name (councils/fordon, councils/fordon/needs/n1), or
// empty if none is. A caller that knows a better type or subject uses
// Precondition.
func FailedPrecondition(format string, args ...any) error {
	return Precondition(StateViolation, subjectOf(args), format, args...)
}

// StateViolation is the PreconditionFailure type of a resource that is not
// in the state a request needs.
const StateViolation = "STATE"

// Precondition is FAILED_PRECONDITION with one PreconditionFailure
// violation of type typ (a short upper-case word: "STATE", "CEILING")
// about subject (the resource's name), described by the message.
func Precondition(typ, subject, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	st := status.New(codes.FailedPrecondition, msg)
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: typ, Subject: subject, Description: msg},
	}}); err == nil {
		st = d
	}
	return st.Err()
}

// resourceName is an AIP-122 resource name: collection/id pairs.
var resourceName = regexp.MustCompile(`^[a-z][A-Za-z0-9]*/[A-Za-z0-9][A-Za-z0-9._~-]*(/[a-z][A-Za-z0-9]*/[A-Za-z0-9][A-Za-z0-9._~-]*)*$`)

// subjectOf is the first of args that is a resource name, or "".
func subjectOf(args []any) string {
	for _, a := range args {
		if s, ok := a.(string); ok && resourceName.MatchString(s) {
			return s
		}
	}
	return ""
}

// Aborted is the error for a stale etag.
func Aborted(name string) error {
	return status.Errorf(codes.Aborted, "%s was changed by someone else (etag mismatch); read it again and retry", name)
}
