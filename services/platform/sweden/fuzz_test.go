package sweden

import (
	"strings"
	"testing"
	"time"
)

// The fuzz targets check that no input panics, that every refusal carries
// one of the package's reasons, and that whatever is accepted is
// normalised: the normalised form and its other accepted spellings parse
// back to the very same value. Seeds are in testdata/fuzz/<target>;
// `make fuzz` runs each target for FUZZTIME.

func FuzzParseOrganisationNumber(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseOrganisationNumber(s)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if len(n) != 11 || n[6] != '-' || strings.Trim(n[:6]+n[7:], "0123456789") != "" {
			t.Fatalf("%q normalised to %q, not NNNNNN-NNNN", s, n)
		}
		for _, spelling := range []string{n, n[:6] + n[7:], "16" + n[:6] + n[7:]} {
			if again, err := ParseOrganisationNumber(spelling); err != nil || again != n {
				t.Fatalf("%q normalised to %q, but %q parses to %q, %v", s, n, spelling, again, err)
			}
		}
	})
}

func FuzzParsePersonalIdentityNumber(f *testing.F) {
	epoch := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string, days uint16) {
		today := epoch.AddDate(0, 0, int(days)) // 1990 to 2169
		p, err := ParsePersonalIdentityNumber(s, today)
		if err != nil {
			checkRefusal(t, err)
			if run := digitRun.FindString(err.Error()); run != "" {
				t.Fatalf("message %q holds the digits %q", err, run)
			}
			return
		}
		n := p.Normalised()
		if len(n) != 12 || strings.Trim(n, "0123456789") != "" {
			t.Fatalf("%q normalised to %q, not 12 digits", s, n)
		}
		if p.Masked() != n[:8]+"-****" || p.String() != p.Masked() {
			t.Fatalf("%q: masked %q, string %q", s, p.Masked(), p.String())
		}
		if p.BirthDate().After(today) {
			t.Fatalf("%q: born %s, after today %s", s, p.BirthDate(), today)
		}
		birth := p.BirthDate().Format("20060102")
		if !p.IsCoordinationNumber() && birth != n[:8] {
			t.Fatalf("%q: born %s but normalised %q", s, birth, n)
		}
		spellings := []string{n, n[:8] + "-" + n[8:]}
		// The 10-digit form, with the separator of the person's age this
		// year, names the same person while they are under 200.
		if age := today.Year() - p.BirthDate().Year(); age < 200 {
			sep := "-"
			if age >= 100 {
				sep = "+"
			}
			spellings = append(spellings, n[2:8]+sep+n[8:])
		}
		for _, spelling := range spellings {
			again, err := ParsePersonalIdentityNumber(spelling, today)
			if err != nil || again.Normalised() != n || !again.BirthDate().Equal(p.BirthDate()) || again.IsCoordinationNumber() != p.IsCoordinationNumber() {
				t.Fatalf("%q parsed to %q, but %q parses to %q, %v", s, n, spelling, again.Normalised(), err)
			}
		}
	})
}

func FuzzParseSNICode(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		code, err := ParseSNICode(s)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if len(code) != 5 {
			t.Fatalf("%q normalised to %q, not 5 digits", s, code)
		}
		if _, ok := SNISectionOf(code); !ok {
			t.Fatalf("%q accepted as %q but has no section", s, code)
		}
		for _, spelling := range []string{code, code[:2] + "." + code[2:]} {
			if again, err := ParseSNICode(spelling); err != nil || again != code {
				t.Fatalf("%q normalised to %q, but %q parses to %q, %v", s, code, spelling, again, err)
			}
		}
	})
}

// A municipality code is accepted only as SCB writes it: four ASCII
// digits, a county (01–25) and a municipality the table names; no other
// spelling (padding, other digits, a prefix of a code) slips through.
func FuzzIsMunicipality(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		if !IsMunicipality(s) {
			return
		}
		if len(s) != 4 || strings.Trim(s, "0123456789") != "" {
			t.Fatalf("%q accepted: not four digits", s)
		}
		if county := s[:2]; county < "01" || county > "25" {
			t.Fatalf("%q accepted: no county %s", s, county)
		}
		if Municipalities[s] == "" {
			t.Fatalf("%q accepted without a name", s)
		}
	})
}
