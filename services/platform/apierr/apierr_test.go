package apierr_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestNoViolationsIsNoError(t *testing.T) {
	var v apierr.Violations
	if !v.Empty() || v.Err() != nil {
		t.Fatalf("zero Violations: Empty %v, Err %v", v.Empty(), v.Err())
	}
}

func TestViolationsNameEveryField(t *testing.T) {
	var v apierr.Violations
	v.Add("need.title", "is required")
	v.Add("need.municipalities[2]", "%q is not a municipality code", "9999")
	v.Add("request_id", "is too long (%d > %d)", 200, 128)
	if v.Empty() {
		t.Fatal("Empty after Add")
	}
	err := v.Err()
	msg := testkit.WantBadRequest(t, err, "need.title", "need.municipalities[2]", "request_id")

	br := badRequest(t, err)
	want := []*errdetails.BadRequest_FieldViolation{
		{Field: "need.title", Description: "is required"},
		{Field: "need.municipalities[2]", Description: `"9999" is not a municipality code`},
		{Field: "request_id", Description: "is too long (200 > 128)"},
	}
	if len(br.GetFieldViolations()) != len(want) {
		t.Fatalf("violations %v, want %v", br.GetFieldViolations(), want)
	}
	for i, fv := range br.GetFieldViolations() {
		if fv.GetField() != want[i].GetField() || fv.GetDescription() != want[i].GetDescription() {
			t.Errorf("violation %d = %v, want %v", i, fv, want[i])
		}
	}
	// The message alone (what a log or a curl user sees) tells it all too.
	for _, part := range []string{"need.title: is required", `need.municipalities[2]: "9999" is not a municipality code`, "request_id: is too long"} {
		if !strings.Contains(msg, part) {
			t.Errorf("message %q lacks %q", msg, part)
		}
	}
}

func TestField(t *testing.T) {
	err := apierr.Field("page_size", "must be at most %d", 1000)
	msg := testkit.WantBadRequest(t, err, "page_size")
	if fields := testkit.BadRequestFields(err); len(fields) != 1 {
		t.Errorf("one-field error names %v", fields)
	}
	if !strings.Contains(msg, "page_size: must be at most 1000") {
		t.Errorf("message %q", msg)
	}
}

func badRequest(t *testing.T, err error) *errdetails.BadRequest {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br
		}
	}
	t.Fatalf("no BadRequest in %v", err)
	return nil
}

func TestAddValidationPrefixesPaths(t *testing.T) {
	need := &councilsv1.CompetenceNeed{
		Title:          "", // too short
		Headcount:      1,
		TargetGroups:   []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_EMPLOYED_AT_RISK},
		Municipalities: []string{"1480", "14x0"}, // the second breaks the pattern
	}
	verr := protovalidate.Validate(need)
	if verr == nil {
		t.Fatal("the need is valid; the test needs a broken one")
	}

	var v apierr.Violations
	if other := v.AddValidation(verr, "need"); other != nil {
		t.Fatalf("AddValidation: %v", other)
	}
	err := v.Err()
	testkit.WantBadRequest(t, err, "need.title", "need.municipalities[1]")
	for _, f := range testkit.BadRequestFields(err) {
		if !strings.HasPrefix(f, "need.") {
			t.Errorf("field %q lacks the prefix", f)
		}
	}

	// Without a prefix the paths are the message's own.
	var bare apierr.Violations
	_ = bare.AddValidation(verr, "")
	if fields := testkit.BadRequestFields(bare.Err()); !slices.Contains(fields, "title") || !slices.Contains(fields, "municipalities[1]") {
		t.Errorf("unprefixed fields %v", fields)
	}

	// Violations add up with the caller's own.
	v.Add("request_id", "is malformed")
	testkit.WantBadRequest(t, v.Err(), "need.title", "need.municipalities[1]", "request_id")
}

func TestAddValidationPassesOtherErrorsThrough(t *testing.T) {
	var v apierr.Violations
	other := errors.New("rule did not compile")
	if got := v.AddValidation(other, "need"); got != other {
		t.Fatalf("AddValidation(non-validation error) = %v, want it back", got)
	}
	if !v.Empty() {
		t.Fatal("a non-validation error was recorded as a violation")
	}
}

func TestOtherStatuses(t *testing.T) {
	for _, c := range []struct {
		err  error
		code codes.Code
		says string
	}{
		{apierr.NotFound("councils/fordon"), codes.NotFound, "councils/fordon not found"},
		{apierr.Aborted("councils/fordon"), codes.Aborted, "councils/fordon was changed"},
	} {
		st := status.Convert(c.err)
		if st.Code() != c.code || !strings.Contains(st.Message(), c.says) {
			t.Errorf("%v: want %v saying %q", c.err, c.code, c.says)
		}
	}
}

// A wrong state carries a PreconditionFailure, as the API conventions
// promise: about the resource named among the arguments, saying what the
// message says.
func TestFailedPreconditionHasDetail(t *testing.T) {
	for _, c := range []struct {
		err     error
		subject string
		msg     string
	}{
		{apierr.FailedPrecondition("cannot submit %s: needed_by %s is in the past", "councils/fordon/needs/n1", "2026-09-01"),
			"councils/fordon/needs/n1", "cannot submit councils/fordon/needs/n1: needed_by 2026-09-01 is in the past"},
		// The subject is the first argument that is a resource name, not
		// merely the first argument.
		{apierr.FailedPrecondition("%d needs of %s are open", 3, "councils/fordon"), "councils/fordon", "3 needs of councils/fordon are open"},
		{apierr.FailedPrecondition("%s has %s", "frameworkAgreements/gr-2026-017", "providers/a"),
			"frameworkAgreements/gr-2026-017", "frameworkAgreements/gr-2026-017 has providers/a"},
		// No resource name among them: no subject, the rest as ever.
		{apierr.FailedPrecondition("need is %s", "STATE_DRAFT"), "", "need is STATE_DRAFT"},
		{apierr.FailedPrecondition("the taxonomy is empty"), "", "the taxonomy is empty"},
		{apierr.FailedPrecondition("%s", "a sentence / with a slash"), "", "a sentence / with a slash"},
	} {
		st := status.Convert(c.err)
		if st.Code() != codes.FailedPrecondition || st.Message() != c.msg {
			t.Errorf("%v: want FAILED_PRECONDITION %q", c.err, c.msg)
			continue
		}
		v := testkit.WantPreconditionFailure(t, c.err, c.subject)
		if v.GetType() != apierr.StateViolation || v.GetDescription() != c.msg {
			t.Errorf("%v: violation %v, want type %s and the message", c.err, v, apierr.StateViolation)
		}
	}
}

func TestPreconditionTypeAndSubject(t *testing.T) {
	err := apierr.Precondition("CEILING", "frameworkAgreements/gr", "%s has %d SEK left", "frameworkAgreements/gr", 100)
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || st.Message() != "frameworkAgreements/gr has 100 SEK left" {
		t.Fatalf("status %v", err)
	}
	if v := testkit.WantPreconditionFailure(t, err, "frameworkAgreements/gr"); v.GetType() != "CEILING" || v.GetDescription() != "frameworkAgreements/gr has 100 SEK left" {
		t.Fatalf("violation %v", v)
	}
}
