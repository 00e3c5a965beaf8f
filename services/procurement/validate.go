package procurement

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"github.com/kompetensnav/kompetensnav/services/platform/sweden"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/protobuf/proto"
)

var (
	providerNameRE  = regexp.MustCompile(`^providers/([a-z0-9][a-z0-9-]{0,62})$`)
	agreementNameRE = regexp.MustCompile(`^frameworkAgreements/([a-z0-9][a-z0-9-]{0,62})$`)
	callOffNameRE   = regexp.MustCompile(`^callOffs/([a-z0-9][a-z0-9-]{0,62})$`)
	needNameRE      = regexp.MustCompile(`^councils/([a-z0-9][a-z0-9-]{0,62})/needs/([a-z0-9][a-z0-9-]{0,62})$`)
)

// parseName returns the id in a name of the pattern shape ("providers/{id}").
func parseName(re *regexp.Regexp, field, name, shape string) (string, error) {
	m := re.FindStringSubmatch(name)
	if m == nil {
		return "", apierr.Field(field, "must be a name of the form %s", shape)
	}
	return m[1], nil
}

func parseProviderName(field, name string) (string, error) {
	return parseName(providerNameRE, field, name, "providers/{provider}")
}

func parseAgreementName(field, name string) (string, error) {
	return parseName(agreementNameRE, field, name, "frameworkAgreements/{framework_agreement}")
}

func parseCallOffName(field, name string) (string, error) {
	return parseName(callOffNameRE, field, name, "callOffs/{call_off}")
}

// parseNeedName splits councils/{c}/needs/{n}.
func parseNeedName(name string) (council, need string, ok bool) {
	m := needNameRE.FindStringSubmatch(name)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

func providerName(id string) string  { return "providers/" + id }
func agreementName(id string) string { return "frameworkAgreements/" + id }
func callOffName(id string) string   { return "callOffs/" + id }
func bidName(callOff, provider string) string {
	return "callOffs/" + callOff + "/bids/" + provider
}

// providerID is the id of providers/{id} (the name's rules were checked).
func providerID(name string) string { return strings.TrimPrefix(name, "providers/") }

// checkRules runs the proto rules of a resource as it will be stored (after
// an update mask was applied), reporting fields under prefix.
func (s *Service) checkRules(v *apierr.Violations, m proto.Message, prefix string) error {
	if err := s.validator.Validate(m); err != nil {
		return v.AddValidation(err, prefix)
	}
	return nil
}

func checkMunicipalities(v *apierr.Violations, field string, codes []string) {
	for i, c := range codes {
		if !sweden.IsMunicipality(c) {
			v.Add(fmt.Sprintf("%s[%d]", field, i), "%q is not an SCB municipality code", c)
		}
	}
}

// Money: SEK only, in whole öre, more than zero and at most MaxSEK.

// MaxSEK bounds every amount (10^11 SEK): totals of öre stay exact in the
// doubles Redis's Lua compares with (below 2^53).
const MaxSEK = 100_000_000_000

const nanosPerOre = 10_000_000

// checkSEK validates a positive SEK amount and returns it in öre.
func checkSEK(v *apierr.Violations, field string, m *money.Money) int64 {
	switch {
	case m == nil:
		v.Add(field, "is required (an amount in SEK)")
	case m.GetCurrencyCode() != "SEK":
		v.Add(field+".currency_code", "must be SEK, not %q: the hub contracts in Swedish kronor", m.GetCurrencyCode())
	case m.GetUnits() < 0 || m.GetNanos() < 0 || (m.GetUnits() == 0 && m.GetNanos() == 0):
		v.Add(field, "must be more than zero")
	case m.GetNanos() >= 1_000_000_000:
		v.Add(field+".nanos", "must be below 1 000 000 000")
	case m.GetNanos()%nanosPerOre != 0:
		v.Add(field+".nanos", "must be whole öre (a multiple of 10 000 000)")
	case m.GetUnits() > MaxSEK:
		v.Add(field+".units", "must be at most %d SEK", int64(MaxSEK))
	default:
		return m.GetUnits()*100 + int64(m.GetNanos()/nanosPerOre)
	}
	return 0
}

// ore is a checked SEK amount in öre (0 for nil).
func ore(m *money.Money) int64 {
	return m.GetUnits()*100 + int64(m.GetNanos()/nanosPerOre)
}

// sek is öre as Money.
func sek(ore int64) *money.Money {
	return &money.Money{CurrencyCode: "SEK", Units: ore / 100, Nanos: int32(ore%100) * nanosPerOre}
}

// formatSEK writes öre as "1 250 000,50 SEK".
func formatSEK(ore int64) string {
	neg := ore < 0
	if neg {
		ore = -ore
	}
	units := strconv.FormatInt(ore/100, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range units {
		if i > 0 && (len(units)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	fmt.Fprintf(&b, ",%02d SEK", ore%100)
	return b.String()
}

// Dates are whole calendar days, judged in Sweden (platform/dates).

// checkDate requires a full, real calendar date.
func checkDate(v *apierr.Violations, field string, d *date.Date) bool {
	if d == nil {
		v.Add(field, "is required")
		return false
	}
	if !dates.Valid(d) {
		dates.Check(v, field, d)
		return false
	}
	return true
}

// today is the date in Sweden now, as dates.Key.
func (s *Service) today() int { return dates.Key(dates.Of(s.now())) }
