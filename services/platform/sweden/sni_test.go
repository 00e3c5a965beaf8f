package sweden

import (
	"fmt"
	"testing"
)

func TestParseSNICode(t *testing.T) {
	for in, want := range map[string]struct{ code, letter, name string }{
		"29101":    {"29101", "C", "Tillverkning"}, // motor vehicles
		"29.320":   {"29320", "C", "Tillverkning"}, // parts and accessories
		" 45200 ":  {"45200", "G", "Handel; reparation av motorfordon och motorcyklar"},
		"49410":    {"49410", "H", "Transport och magasinering"},
		"55101":    {"55101", "I", "Hotell- och restaurangverksamhet"},
		"85.599":   {"85599", "P", "Utbildning"},
		"01110":    {"01110", "A", "Jordbruk, skogsbruk och fiske"},
		"99000":    {"99000", "U", "Verksamhet vid internationella organisationer, utländska ambassader o.d."},
		"62010":    {"62010", "J", "Informations- och kommunikationsverksamhet"},
		"35.110  ": {"35110", "D", "Försörjning av el, gas, värme och kyla"},
	} {
		code, err := ParseSNICode(in)
		if err != nil || code != want.code {
			t.Errorf("ParseSNICode(%q) = %q, %v; want %q", in, code, err, want.code)
			continue
		}
		sec, ok := SNISectionOf(code)
		if !ok || sec.Letter != want.letter || sec.Name != want.name {
			t.Errorf("SNISectionOf(%q) = %+v, %v; want %s %s", code, sec, ok, want.letter, want.name)
		}
	}
}

func TestParseSNICodeRefuses(t *testing.T) {
	for in, want := range map[string]error{
		"":       ErrLength,
		"2910":   ErrLength,
		"291011": ErrLength,
		"29.10":  ErrLength,
		"29a01":  ErrFormat,
		"29-101": ErrFormat,
		"29..01": ErrFormat,
		"2.9101": ErrFormat,
		"291.01": ErrFormat,
		"00000":  ErrUnknownDivision,
		"04100":  ErrUnknownDivision,
		"34.100": ErrUnknownDivision,
		"89000":  ErrUnknownDivision,
	} {
		code, err := ParseSNICode(in)
		wantRefusal(t, in, err, want)
		if code != "" {
			t.Errorf("%q: returned %q with the error", in, code)
		}
	}
}

// SNI 2007 has 88 divisions in 21 sections; the gaps between sections are
// no division.
func TestSNIDivisions(t *testing.T) {
	divisions, sections := 0, map[string]bool{}
	for d := range 100 {
		sec, ok := SNISectionOf(fmt.Sprintf("%02d", d))
		if ok {
			divisions++
			sections[sec.Letter] = true
		}
	}
	if divisions != 88 || len(sections) != 21 {
		t.Errorf("%d divisions in %d sections, want 88 in 21", divisions, len(sections))
	}
	for _, gap := range []string{"00", "04", "34", "40", "44", "48", "54", "57", "67", "76", "83", "89"} {
		if sec, ok := SNISectionOf(gap); ok {
			t.Errorf("%s is no division, got section %s", gap, sec.Letter)
		}
	}
	for _, bad := range []string{"", "2", "291011", "2a", "29.1"} {
		if _, ok := SNISectionOf(bad); ok {
			t.Errorf("SNISectionOf(%q) found a section", bad)
		}
	}
	if sec, ok := SNISectionOf("292"); !ok || sec.Letter != "C" {
		t.Errorf("a group's section: %+v %v", sec, ok)
	}
}
