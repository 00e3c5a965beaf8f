package skills

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/sweden"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/protobuf/proto"
)

var (
	skillNameRE       = regexp.MustCompile(`^skills/([a-z0-9][a-z0-9-]{0,62})$`)
	mappingNameRE     = regexp.MustCompile(`^mappings/([a-z0-9][a-z0-9-]{0,62})$`)
	validationNameRE  = regexp.MustCompile(`^validations/([a-z0-9][a-z0-9-]{0,62})$`)
	certificateNameRE = regexp.MustCompile(`^certificates/([a-z0-9][a-z0-9-]{0,62})$`)
	councilSubjectRE  = regexp.MustCompile(`^councils/([a-z0-9][a-z0-9-]{0,62})$`)
	companySubjectRE  = regexp.MustCompile(`^companies/([a-z0-9][a-z0-9-]{0,62})$`)
)

func parseName(re *regexp.Regexp, kind, field, name string) (string, error) {
	m := re.FindStringSubmatch(name)
	if m == nil {
		return "", apierr.Field(field, "must be a %s name, %s/{%s}", kind, kind+"s", kind)
	}
	return m[1], nil
}

func parseSkillName(field, name string) (string, error) {
	return parseName(skillNameRE, "skill", field, name)
}
func parseMappingName(field, name string) (string, error) {
	return parseName(mappingNameRE, "mapping", field, name)
}
func parseValidationName(field, name string) (string, error) {
	return parseName(validationNameRE, "validation", field, name)
}
func parseCertificateName(field, name string) (string, error) {
	return parseName(certificateNameRE, "certificate", field, name)
}

// skillID is the id of a skill name already checked by the proto rules
// ("" if it is not one).
func skillID(name string) string {
	if m := skillNameRE.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	return ""
}

func skillName(id string) string       { return "skills/" + id }
func mappingName(id string) string     { return "mappings/" + id }
func validationName(id string) string  { return "validations/" + id }
func certificateName(id string) string { return "certificates/" + id }

// checkRules runs the proto rules of a resource as it will be stored (after
// an update mask was applied), reporting fields under prefix.
func (s *Service) checkRules(v *apierr.Violations, m proto.Message, prefix string) error {
	if err := s.validator.Validate(m); err != nil {
		return v.AddValidation(err, prefix)
	}
	return nil
}

// checkPersonReference refuses what could identify a person outright: a
// reference is a participants/{participant} name or another system's id,
// never a personal identity number (the message does not repeat it).
func checkPersonReference(v *apierr.Violations, field, ref string) {
	if sweden.LooksLikePersonalIdentityNumber(ref) {
		v.Add(field, "must not be or contain a personal identity number (personnummer or samordningsnummer): "+
			"refer to the person by a participants/{participant} name or another system's id")
	}
}

// checkDate requires a full, real calendar date.
func checkDate(v *apierr.Violations, field string, d *date.Date) bool {
	if d == nil {
		return true
	}
	t := time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, time.UTC)
	if d.GetYear() < 1 || d.GetYear() > 9999 || d.GetMonth() < 1 || d.GetMonth() > 12 || d.GetDay() < 1 ||
		t.Year() != int(d.GetYear()) || int(t.Month()) != int(d.GetMonth()) || t.Day() != int(d.GetDay()) {
		v.Add(field, "%04d-%02d-%02d is not a calendar date (year, month and day are all required)", d.GetYear(), d.GetMonth(), d.GetDay())
		return false
	}
	return true
}

// today is today's date in Sweden.
func (s *Service) today() *date.Date {
	y, m, d := s.now().In(s.stockholm).Date()
	return &date.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
}

func dateNum(d *date.Date) int {
	return int(d.GetYear())*10000 + int(d.GetMonth())*100 + int(d.GetDay())
}

// checkNotFuture refuses a date after today in Sweden.
func (s *Service) checkNotFuture(v *apierr.Violations, field string, d *date.Date) {
	if d != nil && dateNum(d) > dateNum(s.today()) {
		v.Add(field, "%04d-%02d-%02d is in the future", d.GetYear(), d.GetMonth(), d.GetDay())
	}
}

func dateString(d *date.Date) string {
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

// mustID is the id in a name the service built itself.
func mustID(re *regexp.Regexp, name string) string {
	if m := re.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	return ""
}

// keysOf are the storage keys of resource names, skipping malformed ones.
func keysOf(names []string, re *regexp.Regexp, key func(id string) string) []string {
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if m := re.FindStringSubmatch(n); m != nil {
			keys = append(keys, key(m[1]))
		}
	}
	return keys
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
