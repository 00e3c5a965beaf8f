package dates_test

import (
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"google.golang.org/genproto/googleapis/type/date"
)

func TestValid(t *testing.T) {
	for d, want := range map[*date.Date]bool{
		{Year: 2028, Month: 2, Day: 29}: true, {Year: 2027, Month: 2, Day: 29}: false,
		{Year: 2027, Month: 13, Day: 1}: false, {Year: 2027, Month: 4, Day: 31}: false,
		{Year: 0, Month: 1, Day: 1}: false, {Year: 2027, Month: 1}: false, nil: false,
	} {
		if dates.Valid(d) != want {
			t.Errorf("%v: %v", d, !want)
		}
	}
}

func TestTodayIsSwedish(t *testing.T) {
	// 23:30 UTC on 31 December is already New Year's Day in Stockholm.
	got := dates.Of(time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC))
	if dates.String(got) != "2027-01-01" {
		t.Fatal(dates.String(got))
	}
	if dates.String(dates.AddDate(&date.Date{Year: 2026, Month: 11, Day: 25}, -1, 0, 0)) != "2025-11-25" {
		t.Fatal("a year back")
	}
	if dates.Compare(&date.Date{Year: 2026, Month: 1, Day: 2}, &date.Date{Year: 2025, Month: 12, Day: 31}) != 1 {
		t.Fatal("compare")
	}
}
