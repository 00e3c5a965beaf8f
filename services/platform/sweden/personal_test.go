package sweden

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A fixed today, in the middle of a month so both neighbours are easy.
var today = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestParsePersonalIdentityNumberAccepts(t *testing.T) {
	thisYear := withCheck("260615123") // born today, or turns 100 this year
	later := withCheck("261231123")    // later this year
	nextYear := withCheck("270101123") // turns 100 next year
	leap := withCheck("000229123")
	for _, c := range []struct {
		in           string
		normalised   string
		birth        time.Time
		coordination bool
	}{
		// Skatteverket's published test personnummer.
		{"201701012393", "201701012393", date(2017, 1, 1), false},
		{"20170101-2393", "201701012393", date(2017, 1, 1), false},
		{"170101-2393", "201701012393", date(2017, 1, 1), false},
		{" 170101-2393\t", "201701012393", date(2017, 1, 1), false},
		// Skatteverket's examples: SKV 704, and a samordningsnummer (day + 60).
		{"640823-3234", "196408233234", date(1964, 8, 23), false},
		{"19640823-3234", "196408233234", date(1964, 8, 23), false},
		{"701063-2391", "197010632391", date(1970, 10, 3), true},
		{"19701063-2391", "197010632391", date(1970, 10, 3), true},
		// Century from the separator and today.
		{"121212-1212", "201212121212", date(2012, 12, 12), false},
		{"121212+1212", "191212121212", date(1912, 12, 12), false},
		{"19121212-1212", "191212121212", date(1912, 12, 12), false},
		// "+" from the year a person turns a hundred, birthday or not.
		{thisYear[:6] + "-" + thisYear[6:], "20" + thisYear, date(2026, 6, 15), false}, // born today
		{thisYear[:6] + "+" + thisYear[6:], "19" + thisYear, date(1926, 6, 15), false},
		{later[:6] + "+" + later[6:], "19" + later, date(1926, 12, 31), false},
		{nextYear[:6] + "-" + nextYear[6:], "19" + nextYear, date(1927, 1, 1), false},
		{nextYear[:6] + "+" + nextYear[6:], "18" + nextYear, date(1827, 1, 1), false},
		{leap[:6] + "-" + leap[6:], "20" + leap, date(2000, 2, 29), false},
		{"20" + leap, "20" + leap, date(2000, 2, 29), false},
	} {
		p, err := ParsePersonalIdentityNumber(c.in, today)
		if err != nil {
			t.Errorf("%q refused: %v", c.in, err)
			continue
		}
		if p.Normalised() != c.normalised || !p.BirthDate().Equal(c.birth) || p.IsCoordinationNumber() != c.coordination {
			t.Errorf("%q = %s, born %s, coordination %v; want %s, %s, %v", c.in, p.Normalised(),
				p.BirthDate().Format(time.DateOnly), p.IsCoordinationNumber(), c.normalised, c.birth.Format(time.DateOnly), c.coordination)
		}
		if want := c.normalised[:8] + "-****"; p.Masked() != want {
			t.Errorf("%q masked %q, want %q", c.in, p.Masked(), want)
		}
	}
}

func TestParsePersonalIdentityNumberRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want error
	}{
		{"empty", "  ", ErrLength},
		{"wrong check digit", "20170101-2394", ErrCheckDigit},
		{"wrong check digit, 10 digits", badCheck("640823323")[:6] + "-" + badCheck("640823323")[6:], ErrCheckDigit},
		{"30 February", "20" + withCheck("230230123"), ErrDate},
		{"29 February of a common year", "19" + withCheck("000229123"), ErrDate},
		{"29 February, century makes it a common year", withCheck("000229123")[:6] + "+" + withCheck("000229123")[6:], ErrDate},
		{"month 13", "19" + withCheck("641301123"), ErrDate},
		{"month 00", "19" + withCheck("640001123"), ErrDate},
		{"day 00", "19" + withCheck("640800123"), ErrDate},
		{"day 32", "19" + withCheck("640832123"), ErrDate},
		{"day 60 (neither)", "19" + withCheck("640860123"), ErrDate},
		{"samordningsnummer 31 September", "19" + withCheck("640991123"), ErrDate},
		{"century 17", "17" + withCheck("640823123"), ErrDate},
		{"century 16 (an organisation number)", "165560125790", ErrDate},
		{"future", "20" + withCheck("270101123"), ErrFuture},
		{"tomorrow", "20" + withCheck("260616123"), ErrFuture},
		{"later this year, 10 digits", withCheck("261231123")[:6] + "-" + withCheck("261231123")[6:], ErrFuture},
		{"future samordningsnummer", "20" + withCheck("260676123"), ErrFuture},
		{"11 digits", "1701012393-1", ErrLength},
		{"9 digits", "170101-239", ErrLength},
		{"13 digits", "2017010123931", ErrLength},
		{"letters", "2017O101-2393", ErrFormat},
		{"interim T number", "170101-T393", ErrFormat},
		{"two separators", "170101--2393", ErrFormat},
		{"both separators", "170101-+2393", ErrFormat},
		{"10 digits without separator", "1701012393", ErrFormat},
		{"separator misplaced (10)", "17010-12393", ErrFormat},
		{"separator misplaced (12)", "2017010-12393", ErrFormat},
		{"plus with the century", "20170101+2393", ErrFormat},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParsePersonalIdentityNumber(c.in, today)
			wantRefusal(t, c.in, err, c.want)
			if !p.IsZero() {
				t.Errorf("returned %s with the error", p)
			}
			// Personal data never goes into an error message.
			if run := digitRun.FindString(err.Error()); run != "" {
				t.Errorf("message %q holds the digits %q", err, run)
			}
		})
	}
}

func TestPersonalIdentityNumberPrintsMasked(t *testing.T) {
	p, err := ParsePersonalIdentityNumber("701063-2391", today)
	if err != nil {
		t.Fatal(err)
	}
	type holder struct {
		Number PersonalIdentityNumber
		number PersonalIdentityNumber
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("registered", "pin", p, "holder", holder{Number: p})
	for _, out := range []string{
		fmt.Sprint(p), fmt.Sprintf("%v %+v %s %q", p, p, p, p), fmt.Sprintf("%#v", p),
		fmt.Sprintf("%v", holder{Number: p}), fmt.Sprintf("%+v", &holder{Number: p}),
		buf.String(),
	} {
		if strings.Contains(out, "2391") || strings.Contains(out, "1063-2") || strings.Contains(out, "10632391") {
			t.Errorf("printed the whole number: %s", out)
		}
		if !strings.Contains(out, "19701063-****") {
			t.Errorf("printed %s, want the masked form", out)
		}
	}
	var zero PersonalIdentityNumber
	if zero.Masked() != "" || zero.Normalised() != "" || !zero.IsZero() {
		t.Errorf("zero value: %q %q", zero.Masked(), zero.Normalised())
	}
}

func TestTodayIsACalendarDate(t *testing.T) {
	// Late evening in Sweden is already tomorrow in UTC+14 and still today
	// in UTC: only the date of the value passed counts.
	born := "20" + withCheck("260616123") // born 16 June 2026
	stockholm := time.FixedZone("CEST", 2*3600)
	if _, err := ParsePersonalIdentityNumber(born, time.Date(2026, 6, 16, 0, 30, 0, 0, stockholm)); err != nil {
		t.Errorf("born today (Swedish date) refused: %v", err)
	}
	_, err := ParsePersonalIdentityNumber(born, time.Date(2026, 6, 15, 23, 30, 0, 0, stockholm))
	wantRefusal(t, born, err, ErrFuture)
}

// ContainsPersonalIdentityNumber forwards to LooksLikePersonalIdentityNumber:
// the free-text cases it was written for are answered the same.
func TestContainsPersonalIdentityNumber(t *testing.T) {
	today := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for text, want := range map[string]bool{
		"Anna, coach på Lernia":             false,
		"ring 031-123 45 67":                false,
		"deltagare 640823-3234":             true,
		"ref 196408233234 i ärendet":        true,
		"6408233234":                        true,
		"org 556012-5790":                   false, // an organisation number is not a person's
		"participants/p-19640823":           false,
		"samordningsnummer 701063-2391 här": true,
		"deltagare 640823-3235":             true, // a wrong check digit is still personal data
	} {
		if got := ContainsPersonalIdentityNumber(text, today); got != want || got != LooksLikePersonalIdentityNumber(text) {
			t.Errorf("%q: %v, want %v", text, got, want)
		}
	}
}
