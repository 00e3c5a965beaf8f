package sweden

import (
	"errors"
	"regexp"
	"strconv"
	"testing"
)

// withCheck appends the Luhn check digit to nine digits: the tests build
// their numbers with it, so none of them is a real person's by design other
// than the ones Skatteverket publishes as examples.
func withCheck(nine string) string {
	for c := '0'; c <= '9'; c++ {
		if luhn(nine + string(c)) {
			return nine + string(c)
		}
	}
	panic("unreachable")
}

// badCheck is nine digits with a check digit that is wrong.
func badCheck(nine string) string {
	good := withCheck(nine)
	return nine + strconv.Itoa((int(good[9]-'0')+1)%10)
}

var reasons = []error{ErrFormat, ErrLength, ErrCheckDigit, ErrNotLegalPerson, ErrDate, ErrFuture, ErrUnknownDivision}

// wantRefusal fails t unless err wraps want and has a message.
func wantRefusal(t *testing.T, in string, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%q accepted, want %v", in, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("%q: %v, want it to be %v", in, err, want)
	}
	if len(err.Error()) < 10 {
		t.Fatalf("%q: message %q says too little", in, err)
	}
}

// checkRefusal fails t unless err is one of the package's reasons.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	for _, r := range reasons {
		if errors.Is(err, r) {
			return
		}
	}
	t.Fatalf("error %v is none of the package's reasons", err)
}

func TestLuhn(t *testing.T) {
	for in, want := range map[string]bool{
		"6408233234": true, // Skatteverket's example in SKV 704
		"7010632391": true, // Skatteverket's samordningsnummer example
		"5560125790": true,
		"6408233235": false,
		"6408233243": false, // two digits swapped
		"0000000000": true,
	} {
		if got := luhn(in); got != want {
			t.Errorf("luhn(%s) = %v", in, got)
		}
	}
}

// digitRun finds three or more digits in a row: a message holding one could
// be repeating part of the number.
var digitRun = regexp.MustCompile(`[0-9]{3,}`)
