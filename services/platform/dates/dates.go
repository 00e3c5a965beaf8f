// Package dates handles the API's calendar dates (google.type.Date) the
// same way in every service: which are real dates, how they compare, and
// what "today" is, in Swedish time whatever the host's zone.
package dates

import (
	"fmt"
	"time"
	_ "time/tzdata" // Europe/Stockholm on any host

	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"google.golang.org/genproto/googleapis/type/date"
)

// Date is the API's calendar date, google.type.Date.
type Date = date.Date

// Sweden is the hub's time zone: dates are Swedish dates.
var Sweden = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		panic(err) // embedded by time/tzdata
	}
	return loc
}()

// Valid reports whether d is a full, real calendar date.
func Valid(d *date.Date) bool {
	if d == nil || d.GetYear() < 1 || d.GetYear() > 9999 || d.GetMonth() < 1 || d.GetMonth() > 12 || d.GetDay() < 1 {
		return false
	}
	t := time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, time.UTC)
	return t.Month() == time.Month(d.GetMonth()) && t.Day() == int(d.GetDay())
}

// Check adds a violation on field when d is set but not a real date.
func Check(v *apierr.Violations, field string, d *date.Date) {
	if d != nil && !Valid(d) {
		v.Add(field, "%s is not a calendar date (year, month and day are all required)", String(d))
	}
}

// String is YYYY-MM-DD.
func String(d *date.Date) string {
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

// Key is YYYYMMDD as a number: dates compare as their keys do.
func Key(d *date.Date) int {
	return int(d.GetYear())*10000 + int(d.GetMonth())*100 + int(d.GetDay())
}

// Compare is -1, 0 or 1 as a is before, on or after b.
func Compare(a, b *date.Date) int {
	switch ka, kb := Key(a), Key(b); {
	case ka < kb:
		return -1
	case ka > kb:
		return 1
	}
	return 0
}

// Of is the Swedish date of t.
func Of(t time.Time) *date.Date {
	y, m, d := t.In(Sweden).Date()
	return &date.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
}

// Time is midnight at the start of d in Sweden.
func Time(d *date.Date) time.Time {
	return time.Date(int(d.GetYear()), time.Month(d.GetMonth()), int(d.GetDay()), 0, 0, 0, 0, Sweden)
}

// AddDate is d moved by years, months and days (normalised as time.AddDate
// does: 31 March plus a month is 1 May).
func AddDate(d *date.Date, years, months, days int) *date.Date {
	return Of(Time(d).AddDate(years, months, days).Add(12 * time.Hour))
}
