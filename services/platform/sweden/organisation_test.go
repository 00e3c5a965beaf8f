package sweden

import (
	"strings"
	"testing"
)

func TestParseOrganisationNumberAccepts(t *testing.T) {
	ab := withCheck("556012579")        // an aktiebolag-shaped number (group 5)
	municipal := withCheck("212000135") // group 2: state, regions, municipalities
	for in, want := range map[string]string{
		"556012-5790":   "556012-5790",
		"5560125790":    "556012-5790",
		"165560125790":  "556012-5790",
		" 556012-5790 ": "556012-5790",
		ab:              ab[:6] + "-" + ab[6:],
		"16" + ab:       ab[:6] + "-" + ab[6:],
		municipal:       municipal[:6] + "-" + municipal[6:],
	} {
		got, err := ParseOrganisationNumber(in)
		if err != nil || got != want {
			t.Errorf("ParseOrganisationNumber(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseOrganisationNumberRefuses(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
		says string // part of the message
	}{
		{"", ErrLength, "10 digits"},
		{"556012-5791", ErrCheckDigit, "check digit"},
		{badCheck("556012579"), ErrCheckDigit, "check digit"},
		{"556012-579", ErrLength, "has 9 digits"},
		{"55601257901", ErrLength, "has 11 digits"},
		{"1655601257901", ErrLength, "has 13 digits"},
		{"556O12-5790", ErrFormat, "only digits"},
		{"556012 5790", ErrFormat, "only digits"},
		{"556012--5790", ErrFormat, "only digits"},
		{"556012+5790", ErrFormat, "only digits"},
		{"55601-25790", ErrFormat, "wrong place"},
		{"16556012-5790", ErrFormat, "without"},
		{"175560125790", ErrFormat, "start with 16"},
		// A sole trader's number is their personnummer: digits 3–4 a month.
		{"121212-1212", ErrNotLegalPerson, "sole trader"},
		{"6408233234", ErrNotLegalPerson, "sole trader"},
		{"196408233234", ErrNotLegalPerson, "sole trader"},
		{withCheck("551912345"), ErrNotLegalPerson, "20 or more"},
	} {
		got, err := ParseOrganisationNumber(c.in)
		wantRefusal(t, c.in, err, c.want)
		if got != "" {
			t.Errorf("%q: returned %q with the error", c.in, got)
		}
		if !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: message %q does not say %q", c.in, err, c.says)
		}
	}
}

func TestOrganisationNumberBoundaryOfLegalPersons(t *testing.T) {
	if _, err := ParseOrganisationNumber(withCheck("552000000")); err != nil {
		t.Errorf("digits 3–4 = 20 refused: %v", err)
	}
	_, err := ParseOrganisationNumber(withCheck("551999999"))
	wantRefusal(t, "551999999?", err, ErrNotLegalPerson)
}
