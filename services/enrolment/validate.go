package enrolment

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"github.com/kompetensnav/kompetensnav/services/platform/sweden"
	"golang.org/x/text/language"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/genproto/googleapis/type/timeofday"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const idPattern = `([a-z0-9][a-z0-9-]{0,62})`

var (
	projectNameRE     = regexp.MustCompile(`^projects/` + idPattern + `$`)
	offeringNameRE    = regexp.MustCompile(`^offerings/` + idPattern + `$`)
	enrolmentNameRE   = regexp.MustCompile(`^offerings/` + idPattern + `/enrolments/` + idPattern + `$`)
	participantNameRE = regexp.MustCompile(`^participants/` + idPattern + `$`)
	// Six digits in a row could be a birth date or part of a personal
	// identity number; ids are not encrypted, so they may not hold one.
	sixDigitsRE = regexp.MustCompile(`[0-9]{6}`)
)

func parseOne(re *regexp.Regexp, field, name, what string) (string, error) {
	m := re.FindStringSubmatch(name)
	if m == nil {
		return "", apierr.Field(field, "must be %s", what)
	}
	return m[1], nil
}

func parseProjectName(field, name string) (string, error) {
	return parseOne(projectNameRE, field, name, "a project name, projects/{project}")
}

func parseOfferingName(field, name string) (string, error) {
	return parseOne(offeringNameRE, field, name, "an offering name, offerings/{offering}")
}

func parseParticipantName(field, name string) (string, error) {
	return parseOne(participantNameRE, field, name, "a participant name, participants/{participant}")
}

func parseEnrolmentName(field, name string) (offering, id string, err error) {
	m := enrolmentNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", "", apierr.Field(field, "must be an enrolment name, offerings/{offering}/enrolments/{enrolment}")
	}
	return m[1], m[2], nil
}

func projectName(id string) string             { return "projects/" + id }
func offeringName(id string) string            { return "offerings/" + id }
func participantName(id string) string         { return "participants/" + id }
func enrolmentName(offering, id string) string { return "offerings/" + offering + "/enrolments/" + id }

// offeringOf is "offerings/o" of "offerings/o/enrolments/e" (or of itself).
func offeringOf(name string) string {
	if i := strings.Index(name, "/enrolments/"); i >= 0 {
		return name[:i]
	}
	return name
}

// checkRules runs the proto rules of a resource as it will be stored (after
// an update mask was applied), reporting fields under prefix.
func (s *Service) checkRules(v *apierr.Violations, m proto.Message, prefix string) error {
	if err := s.validator.Validate(m); err != nil {
		return v.AddValidation(err, prefix)
	}
	return nil
}

// Dates are the platform's (services/platform/dates): real calendar
// dates, compared as YYYYMMDD numbers, "today" in Sweden.
var (
	validDate  = dates.Valid
	dateKey    = dates.Key
	dateString = dates.String
)

// checkDate requires a full, real calendar date (presence is the proto's
// rule).
func checkDate(v *apierr.Violations, field string, d *date.Date) { dates.Check(v, field, d) }

// today is today's date in Sweden.
func (s *Service) today() *date.Date { return dates.Of(s.now()) }

// ageOn is the age in whole years of someone born on birth, on day.
func ageOn(birth time.Time, day *date.Date) int {
	age := int(day.GetYear()) - birth.Year()
	if int(day.GetMonth()) < int(birth.Month()) || (int(day.GetMonth()) == int(birth.Month()) && int(day.GetDay()) < birth.Day()) {
		age--
	}
	return age
}

// checkTime requires a time of day to the minute (seconds allowed, no
// fractions).
func checkTime(v *apierr.Violations, field string, t *timeofday.TimeOfDay) {
	if t == nil {
		return
	}
	if t.GetHours() < 0 || t.GetHours() > 23 || t.GetMinutes() < 0 || t.GetMinutes() > 59 ||
		t.GetSeconds() < 0 || t.GetSeconds() > 59 || t.GetNanos() != 0 {
		v.Add(field, "is not a time of day (hours 0–23, minutes and seconds 0–59, no fractions)")
	}
}

func timeKey(t *timeofday.TimeOfDay) int {
	return int(t.GetHours())*3600 + int(t.GetMinutes())*60 + int(t.GetSeconds())
}

// checkSEK requires an amount in Swedish kronor that is not negative.
func checkSEK(v *apierr.Violations, field string, m *money.Money) {
	if m == nil {
		return
	}
	if m.GetCurrencyCode() != "SEK" {
		v.Add(field+".currency_code", "must be SEK, not %q", m.GetCurrencyCode())
	}
	if m.GetUnits() < 0 || m.GetNanos() < 0 || m.GetNanos() > 999_999_999 {
		v.Add(field, "must not be negative (units ≥ 0, nanos 0–999999999)")
	}
}

// checkMunicipality requires an SCB municipality code.
func checkMunicipality(v *apierr.Violations, field, code string) {
	if code != "" && !sweden.IsMunicipality(code) {
		v.Add(field, "%q is not an SCB municipality code", code)
	}
}

func checkMunicipalities(v *apierr.Violations, field string, codes []string) {
	for i, c := range codes {
		checkMunicipality(v, fmt.Sprintf("%s[%d]", field, i), c)
	}
}

// canonicalLanguage checks a BCP-47 tag and returns its canonical form
// ("sv" for an empty one).
func canonicalLanguage(v *apierr.Violations, field, tag string) string {
	if tag == "" {
		return "sv"
	}
	t, err := language.Parse(tag)
	if err != nil {
		v.Add(field, "%q is not a BCP-47 language tag (sv, en, ar, so-SO, …)", tag)
		return tag
	}
	return t.String()
}

// A refusal names the rule a request broke: FAILED_PRECONDITION with a
// PreconditionFailure listing every rule, its subject and why.
type refusal struct {
	pf      errdetails.PreconditionFailure
	reasons []string
}

func (r *refusal) add(rule, subject, format string, args ...any) {
	desc := fmt.Sprintf(format, args...)
	r.pf.Violations = append(r.pf.Violations, &errdetails.PreconditionFailure_Violation{Type: rule, Subject: subject, Description: desc})
	r.reasons = append(r.reasons, desc)
}

func (r *refusal) err(prefix string) error {
	if len(r.reasons) == 0 {
		return nil
	}
	st := status.New(codes.FailedPrecondition, prefix+": "+strings.Join(r.reasons, "; "))
	if d, err := st.WithDetails(&r.pf); err == nil {
		st = d
	}
	return st.Err()
}

// refuse is a one-rule refusal.
func refuse(rule, subject, format string, args ...any) error {
	var r refusal
	r.add(rule, subject, format, args...)
	st := status.New(codes.FailedPrecondition, r.reasons[0])
	if d, err := st.WithDetails(&r.pf); err == nil {
		st = d
	}
	return st.Err()
}
