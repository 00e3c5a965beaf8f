package sweden

import (
	"fmt"
	"strings"
)

// ParseOrganisationNumber checks a Swedish organisation number
// (organisationsnummer) of a legal person and returns it normalised as
// NNNNNN-NNNN. It accepts NNNNNN-NNNN, NNNNNNNNNN and the 12-digit form
// 16NNNNNNNNNN some registers use; surrounding blanks are ignored.
//
// The last digit must be the Luhn check digit of the other nine, and the
// third and fourth digits must be 20 or more: that is what makes it a legal
// person's number. A personal identity number, which is what a sole trader
// (enskild firma) uses as organisation number, is refused with a message
// saying so: the hub's companies and providers are legal persons.
//
//	n, err := sweden.ParseOrganisationNumber("5560125790") // "556012-5790", nil
func ParseOrganisationNumber(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", refuse(ErrLength, "is empty: an organisation number has 10 digits, NNNNNN-NNNN")
	}
	d, sep, at, ok := scan(s, "-")
	if !ok {
		return "", refuse(ErrFormat, "may contain only digits and one hyphen, written NNNNNN-NNNN")
	}
	switch len(d) {
	case 10:
		if sep != 0 && at != 6 {
			return "", refuse(ErrFormat, "has its hyphen in the wrong place: write NNNNNN-NNNN")
		}
	case 12:
		if sep != 0 {
			return "", refuse(ErrFormat, "has a hyphen, but the 12-digit form is written without one: 16NNNNNNNNNN (or write NNNNNN-NNNN)")
		}
		switch d[:2] {
		case "16":
			d = d[2:]
		case "18", "19", "20":
			return "", refuse(ErrNotLegalPerson, "is a personal identity number written with its century, as a sole trader has; "+
				"only a legal person's organisation number is accepted (NNNNNN-NNNN, its third and fourth digits 20 or more)")
		default:
			return "", refuse(ErrFormat, "has 12 digits but does not start with 16: write 16NNNNNNNNNN, or the 10 digits NNNNNN-NNNN")
		}
	default:
		return "", refuse(ErrLength, fmt.Sprintf("has %d digits: an organisation number has 10, NNNNNN-NNNN (12 with the prefix 16)", len(d)))
	}
	if !luhn(d) {
		return "", refuse(ErrCheckDigit, "has a wrong check digit: the last digit does not match the other nine (is a digit mistyped?)")
	}
	if d[2:4] < "20" {
		return "", refuse(ErrNotLegalPerson, "is shaped like a personal identity number (third and fourth digits below 20), as a sole trader has; "+
			"only a legal person's organisation number is accepted (its third and fourth digits are 20 or more)")
	}
	return d[:6] + "-" + d[6:], nil
}
