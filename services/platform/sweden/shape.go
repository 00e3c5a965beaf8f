package sweden

import "regexp"

// pinShape is a personal identity number as people write one, with or
// without the century and a separator: YYMMDD-NNNN, YYMMDD+NNNN,
// YYYYMMDDNNNN, YYYYMMDD-NNNN, YYYY-MM-DD-NNNN, YYMMDD NNNN. The groups are
// the date part (without separators) and the last four digits.
var pinShape = regexp.MustCompile(`(?:^|[^0-9])((?:[0-9]{2})?[0-9]{2}[- ]?[0-9]{2}[- ]?[0-9]{2})[-+ ]?([0-9]{4})(?:$|[^0-9])`)

// LooksLikePersonalIdentityNumber reports whether s holds, anywhere in it,
// something written like a personnummer or samordningsnummer: 10 or 12
// digits (alone, not part of a longer run of digits) in one of the ways
// people write them, whose date part could be a birth date (a month 01–12
// and a day 01–31, or 61–91 for a samordningsnummer). The check digit is
// not required to be right: a mistyped personal identity number is still
// personal data.
//
// It is for fields that must never hold one (an opaque reference to a
// person, free text that is logged): refuse what it reports, and never
// repeat the value in the message.
func LooksLikePersonalIdentityNumber(s string) bool {
	// Matches may share the character between them ("x 640823-3234,640823-3234"),
	// so each is looked for from just after the previous one's start.
	for rest := s; rest != ""; {
		loc := pinShape.FindStringSubmatchIndex(rest)
		if loc == nil {
			return false
		}
		if plausibleDatePart(stripSeparators(rest[loc[2]:loc[3]])) {
			return true
		}
		rest = rest[loc[2]+1:]
	}
	return false
}

func stripSeparators(s string) string {
	b := make([]byte, 0, len(s))
	for i := range len(s) {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// plausibleDatePart: YYMMDD or YYYYMMDD (century 18, 19 or 20) with a
// month and a day (+ 60 for a samordningsnummer) that exist in some year.
func plausibleDatePart(d string) bool {
	if len(d) == 8 {
		if c := atoi(d[:2]); c < 18 || c > 20 {
			return false
		}
		d = d[2:]
	}
	if len(d) != 6 {
		return false
	}
	month, day := atoi(d[2:4]), atoi(d[4:6])
	if day > 60 {
		day -= 60
	}
	return month >= 1 && month <= 12 && day >= 1 && day <= 31
}
