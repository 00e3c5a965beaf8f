package sweden

import (
	"fmt"
	"strings"
)

// SNISection is a section (avdelning) of SNI 2007, the Swedish Standard
// Industrial Classification (Svensk näringsgrensindelning): a letter A–U
// and its Swedish name.
type SNISection struct {
	Letter string
	Name   string
}

// sniSections are SNI 2007's 21 sections, each with the first and last of
// its two-digit divisions (huvudgrupper). SNI 2007 follows NACE Rev. 2, so
// these are NACE's sections and 88 divisions; every number inside a range
// is a division, the numbers between ranges (04, 34, 40, …) are not.
var sniSections = []struct {
	SNISection
	first, last int
}{
	{SNISection{"A", "Jordbruk, skogsbruk och fiske"}, 1, 3},
	{SNISection{"B", "Utvinning av mineral"}, 5, 9},
	{SNISection{"C", "Tillverkning"}, 10, 33},
	{SNISection{"D", "Försörjning av el, gas, värme och kyla"}, 35, 35},
	{SNISection{"E", "Vattenförsörjning; avloppsrening, avfallshantering och sanering"}, 36, 39},
	{SNISection{"F", "Byggverksamhet"}, 41, 43},
	{SNISection{"G", "Handel; reparation av motorfordon och motorcyklar"}, 45, 47},
	{SNISection{"H", "Transport och magasinering"}, 49, 53},
	{SNISection{"I", "Hotell- och restaurangverksamhet"}, 55, 56},
	{SNISection{"J", "Informations- och kommunikationsverksamhet"}, 58, 63},
	{SNISection{"K", "Finans- och försäkringsverksamhet"}, 64, 66},
	{SNISection{"L", "Fastighetsverksamhet"}, 68, 68},
	{SNISection{"M", "Verksamhet inom juridik, ekonomi, vetenskap och teknik"}, 69, 75},
	{SNISection{"N", "Uthyrning, fastighetsservice, resetjänster och andra stödtjänster"}, 77, 82},
	{SNISection{"O", "Offentlig förvaltning och försvar; obligatorisk socialförsäkring"}, 84, 84},
	{SNISection{"P", "Utbildning"}, 85, 85},
	{SNISection{"Q", "Vård och omsorg; sociala tjänster"}, 86, 88},
	{SNISection{"R", "Kultur, nöje och fritid"}, 90, 93},
	{SNISection{"S", "Annan serviceverksamhet"}, 94, 96},
	{SNISection{"T", "Förvärvsarbete i hushåll; hushållens produktion av diverse varor och tjänster för eget bruk"}, 97, 98},
	{SNISection{"U", "Verksamhet vid internationella organisationer, utländska ambassader o.d."}, 99, 99},
}

// ParseSNICode checks an SNI 2007 industry code (detaljgrupp) and returns
// it normalised as five digits. It accepts NNNNN and SCB's dotted NN.NNN
// (surrounding blanks ignored); the two-digit division must exist in SNI
// 2007. It does not check that the three digits below the division name a
// detailed group SCB defined: the table that would take is not kept here.
//
//	code, err := sweden.ParseSNICode("29.101") // "29101", nil
//	sec, _ := sweden.SNISectionOf(code)        // {C Tillverkning}
func ParseSNICode(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", refuse(ErrLength, "is empty: an SNI 2007 code has 5 digits, NNNNN")
	}
	d, sep, at, ok := scan(s, ".")
	if !ok {
		return "", refuse(ErrFormat, "may contain only digits (and a dot after the second, NN.NNN): an SNI 2007 code is written NNNNN")
	}
	if len(d) != 5 {
		return "", refuse(ErrLength, fmt.Sprintf("has %d digits: an SNI 2007 code has 5, NNNNN", len(d)))
	}
	if sep != 0 && at != 2 {
		return "", refuse(ErrFormat, "has its dot in the wrong place: write NNNNN or NN.NNN")
	}
	if _, ok := SNISectionOf(d); !ok {
		return "", refuse(ErrUnknownDivision, "starts with a division (its first two digits) that SNI 2007 does not have")
	}
	return d, nil
}

// SNISectionOf is the SNI 2007 section of code, found from its first two
// digits (the division); code may be a division, group or full code
// (NN, NNN, NNNN or NNNNN). ok is false if those digits are no division.
func SNISectionOf(code string) (sec SNISection, ok bool) {
	if len(code) < 2 || len(code) > 5 || strings.Trim(code, "0123456789") != "" {
		return SNISection{}, false
	}
	div := atoi(code[:2])
	for _, s := range sniSections {
		if div >= s.first && div <= s.last {
			return s.SNISection, true
		}
	}
	return SNISection{}, false
}
