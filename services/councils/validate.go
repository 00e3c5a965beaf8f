package councils

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/sweden"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/protobuf/proto"
)

var (
	councilNameRE = regexp.MustCompile(`^councils/([a-z0-9][a-z0-9-]{0,62})$`)
	needNameRE    = regexp.MustCompile(`^councils/([a-z0-9][a-z0-9-]{0,62})/needs/([a-z0-9][a-z0-9-]{0,62})$`)
)

// parseCouncilName returns the id in "councils/{id}"; the request's proto
// rules already checked the pattern, except on update where the resource is
// checked here.
func parseCouncilName(field, name string) (string, error) {
	m := councilNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", apierr.Field(field, "must be a council name, councils/{council}")
	}
	return m[1], nil
}

func parseNeedName(field, name string) (council, need string, err error) {
	m := needNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", "", apierr.Field(field, "must be a need name, councils/{council}/needs/{need}")
	}
	return m[1], m[2], nil
}

func councilName(id string) string       { return "councils/" + id }
func needName(council, id string) string { return "councils/" + council + "/needs/" + id }

// checkRules runs the proto rules of a resource as it will be stored (after
// an update mask was applied), reporting fields under prefix.
func (s *Service) checkRules(v *apierr.Violations, m proto.Message, prefix string) error {
	if err := s.validator.Validate(m); err != nil {
		return v.AddValidation(err, prefix)
	}
	return nil
}

// checkMunicipalities requires real SCB codes, and with within non-nil,
// codes among within.
func checkMunicipalities(v *apierr.Violations, field string, codes, within []string) {
	for i, c := range codes {
		switch {
		case !sweden.IsMunicipality(c):
			v.Add(fmt.Sprintf("%s[%d]", field, i), "%q is not an SCB municipality code", c)
		case within != nil && !slices.Contains(within, c):
			v.Add(fmt.Sprintf("%s[%d]", field, i), "%s is not among the council's municipalities (%s)", c, strings.Join(within, ", "))
		}
	}
}

// checkDate requires a full, real calendar date.
func checkDate(v *apierr.Violations, field string, d *date.Date) {
	if d == nil {
		return
	}
	t := time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, time.UTC)
	if d.GetYear() < 1 || d.GetYear() > 9999 || d.GetMonth() < 1 || d.GetMonth() > 12 || d.GetDay() < 1 ||
		t.Year() != int(d.GetYear()) || int(t.Month()) != int(d.GetMonth()) || t.Day() != int(d.GetDay()) {
		v.Add(field, "%04d-%02d-%02d is not a calendar date (year, month and day are all required)", d.GetYear(), d.GetMonth(), d.GetDay())
	}
}

// beforeToday reports whether d is earlier than today in Sweden.
func (s *Service) beforeToday(d *date.Date) bool {
	y, m, day := s.now().In(s.stockholm).Date()
	today := y*10000 + int(m)*100 + day
	return int(d.GetYear())*10000+int(d.GetMonth())*100+int(d.GetDay()) < today
}
