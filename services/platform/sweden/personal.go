package sweden

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// PersonalIdentityNumber is a checked personnummer or samordningsnummer
// (coordination number). It is personal data: String, GoString and
// LogValue give only the masked form (19640823-****), so printing or
// logging one by mistake never shows the whole number; Normalised is the
// one way to get it, for encrypting or hashing it.
//
// It deliberately has no gender: the hub records the gender a participant
// states, not one read from the number.
type PersonalIdentityNumber struct {
	digits       string    // YYYYMMDDNNNN
	birth        time.Time // midnight UTC
	coordination bool
}

// ParsePersonalIdentityNumber checks a personal identity number
// (personnummer) or coordination number (samordningsnummer) written
// YYMMDD-NNNN, YYMMDD+NNNN (the + from the year the person turns a hundred),
// YYYYMMDDNNNN or YYYYMMDD-NNNN; surrounding blanks are ignored.
//
// The last digit must be the Luhn check digit of the 10-digit form, the date
// part a real calendar date (a samordningsnummer has 60 added to the day),
// the century 18, 19 or 20, and the birth date not after today. today is
// today's date in Sweden (only its year, month and day are used); the
// 10-digit forms take their century from its year: "-" is for people who
// turn at most 99 this year, "+" for those who turn a hundred or more.
//
//	p, err := sweden.ParsePersonalIdentityNumber("701063-2391", today)
//	p.Normalised()           // "197010632391"
//	p.BirthDate()            // 1970-10-03
//	p.IsCoordinationNumber() // true
//	p.Masked()               // "19701063-****"
func ParsePersonalIdentityNumber(s string, today time.Time) (PersonalIdentityNumber, error) {
	var none PersonalIdentityNumber
	s = strings.TrimSpace(s)
	if s == "" {
		return none, refuse(ErrLength, "is empty: write YYYYMMDDNNNN, YYYYMMDD-NNNN or YYMMDD-NNNN")
	}
	d, sep, at, ok := scan(s, "-+")
	if !ok {
		return none, refuse(ErrFormat, "may contain only digits and one separator, - or +: write YYYYMMDDNNNN, YYYYMMDD-NNNN or YYMMDD-NNNN")
	}
	var ten string // the 10-digit form without separator, YYMMDDNNNN
	switch len(d) {
	case 12:
		switch {
		case sep == '+':
			return none, refuse(ErrFormat, "has a +, which only the 10-digit form uses (YYMMDD+NNNN, from the year the person turns a hundred); "+
				"with the century write YYYYMMDDNNNN or YYYYMMDD-NNNN")
		case sep == '-' && at != 8:
			return none, refuse(ErrFormat, "has its hyphen in the wrong place: write YYYYMMDD-NNNN")
		}
		ten = d[2:]
	case 10:
		if sep == 0 {
			return none, refuse(ErrFormat, "needs a separator in the 10-digit form: YYMMDD-NNNN, or YYMMDD+NNNN from the year the person turns a hundred "+
				"(or write all 12 digits, YYYYMMDDNNNN)")
		}
		if at != 6 {
			return none, refuse(ErrFormat, "has its separator in the wrong place: write YYMMDD-NNNN")
		}
		ten = d
	default:
		return none, refuse(ErrLength, "has "+digitCount(len(d))+": write 12 (YYYYMMDDNNNN or YYYYMMDD-NNNN), or 10 with a separator (YYMMDD-NNNN)")
	}
	if !luhn(ten) {
		return none, refuse(ErrCheckDigit, "has a wrong check digit: the last digit does not match the other nine (is a digit mistyped?)")
	}

	month, day := atoi(ten[2:4]), atoi(ten[4:6])
	coordination := day > 60
	if coordination {
		day -= 60
	}
	if month < 1 || month > 12 || day < 1 || day > 31 {
		return none, refuse(ErrDate, "does not hold a calendar date (YYMMDD; a samordningsnummer adds 60 to the day)")
	}
	ty, tm, td := today.Date()
	var year int
	if len(d) == 12 {
		year = atoi(d[:4])
	} else {
		// Skatteverket writes "+" instead of "-" from the year a person
		// turns a hundred (18 § folkbokföringslagen): with "-" the birth
		// year is the latest one ending in YY that is not after this year,
		// with "+" the one a century before.
		yy := atoi(ten[:2])
		year = ty - ((ty-yy)%100+100)%100 // Go's % keeps the sign
		if sep == '+' {
			year -= 100
		}
	}
	if year < 1800 || year > 2099 {
		return none, refuse(ErrDate, "has a birth year outside the centuries 18, 19 and 20 that personal identity numbers use")
	}
	if day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return none, refuse(ErrDate, "does not hold a calendar date (YYMMDD; a samordningsnummer adds 60 to the day)")
	}
	if after(year, month, day, ty, int(tm), td) {
		return none, refuse(ErrFuture, "has a birth date after today: check the year and the century")
	}
	return PersonalIdentityNumber{
		digits:       fmt.Sprintf("%04d", year)[:2] + ten,
		birth:        time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC),
		coordination: coordination,
	}, nil
}

// Normalised is the number as 12 digits, YYYYMMDDNNNN (a samordningsnummer
// keeps its day + 60). Empty for the zero value.
func (p PersonalIdentityNumber) Normalised() string { return p.digits }

// BirthDate is the date of birth, at midnight UTC.
func (p PersonalIdentityNumber) BirthDate() time.Time { return p.birth }

// IsCoordinationNumber reports whether it is a samordningsnummer, given to
// people who are not, or were never, registered in Sweden.
func (p PersonalIdentityNumber) IsCoordinationNumber() bool { return p.coordination }

// Masked shows the date part and hides the rest: "19640823-****". This is
// what responses show by default. Empty for the zero value.
func (p PersonalIdentityNumber) Masked() string {
	if p.digits == "" {
		return ""
	}
	return p.digits[:8] + "-****"
}

// IsZero reports whether p is the zero value (no number).
func (p PersonalIdentityNumber) IsZero() bool { return p.digits == "" }

// String is the masked form.
func (p PersonalIdentityNumber) String() string { return p.Masked() }

// GoString is the masked form, so that %#v does not print the fields.
func (p PersonalIdentityNumber) GoString() string { return strconv.Quote(p.Masked()) }

// LogValue is the masked form, for log/slog.
func (p PersonalIdentityNumber) LogValue() slog.Value { return slog.StringValue(p.Masked()) }

// after reports whether the date y-m-d is after the date ty-tm-td (compared
// as numbers, so an impossible date such as 29 February of a common year
// still compares sensibly).
func after(y, m, d, ty, tm, td int) bool {
	if y != ty {
		return y > ty
	}
	if m != tm {
		return m > tm
	}
	return d > td
}

// digitCount says how many digits there are, up to a point: a count of
// three digits in a message would look like part of a number.
func digitCount(n int) string {
	if n > 99 {
		return "far too many digits"
	}
	return fmt.Sprintf("%d digits", n)
}

// atoi parses ASCII digits the caller has checked.
func atoi(s string) int {
	n := 0
	for i := range len(s) {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// ContainsPersonalIdentityNumber is LooksLikePersonalIdentityNumber(text);
// today is not used.
//
// Deprecated: use LooksLikePersonalIdentityNumber. The two answered the
// same question differently (this one only caught numbers with a right
// check digit, and also caught them at the start of a longer run of
// digits); one answer now serves every caller. Kept, forwarding, while
// branches that may call it are in flight; to be removed after them.
func ContainsPersonalIdentityNumber(text string, today time.Time) bool {
	return LooksLikePersonalIdentityNumber(text)
}
