package sweden

import (
	"errors"
	"strings"
)

// Why a number was refused. Every parser of this package returns an error
// that wraps one of these (test with errors.Is) and whose message is written
// for the person who typed the number, so a service can put it straight into
// a google.rpc.BadRequest field violation:
//
//	if _, err := sweden.ParseOrganisationNumber(c.GetOrganisationNumber()); err != nil {
//		v.Add("company.organisation_number", "%v", err)
//	}
//
// No message repeats the number or any digit of it: a personal identity
// number is personal data, and error messages end up in logs.
var (
	// ErrFormat: characters other than digits and the one separator the
	// form allows, or the separator in the wrong place.
	ErrFormat = errors.New("wrong format")
	// ErrLength: too few or too many digits.
	ErrLength = errors.New("wrong number of digits")
	// ErrCheckDigit: the last digit is not the Luhn check digit of the others.
	ErrCheckDigit = errors.New("wrong check digit")
	// ErrNotLegalPerson: an organisation number shaped like a personal
	// identity number (a sole trader's), not a legal person's.
	ErrNotLegalPerson = errors.New("not a legal person's organisation number")
	// ErrDate: a personal identity number whose date part is no calendar date.
	ErrDate = errors.New("no such date")
	// ErrFuture: a personal identity number of someone not born yet.
	ErrFuture = errors.New("birth date in the future")
	// ErrUnknownDivision: an SNI code whose division does not exist.
	ErrUnknownDivision = errors.New("no such SNI division")
)

// refusal is an error with a message for people that still answers
// errors.Is for its reason.
type refusal struct {
	reason error
	msg    string
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.reason }

func refuse(reason error, msg string) error { return &refusal{reason: reason, msg: msg} }

// luhn reports whether the last digit of digits (ASCII digits only) is the
// Luhn check digit of the others, the check Skatteverket and Bolagsverket use
// for personal identity and organisation numbers alike. Written here rather
// than imported: it is five lines, and the Swedish-number libraries that
// include it report every failure as one "invalid" without saying which rule
// failed, which the API has to tell its callers.
func luhn(digits string) bool {
	sum := 0
	for i := range len(digits) {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// scan splits s into its digits and its one separator (a byte from seps, or
// 0 if none) at index sepAt of the digits. ok is false if s holds anything
// else, or more than one separator.
func scan(s, seps string) (digits string, sep byte, sepAt int, ok bool) {
	b := make([]byte, 0, len(s))
	sepAt = -1
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			b = append(b, c)
		case sep == 0 && strings.IndexByte(seps, c) >= 0:
			sep, sepAt = c, len(b)
		default:
			return "", 0, -1, false
		}
	}
	return string(b), sep, sepAt, true
}
