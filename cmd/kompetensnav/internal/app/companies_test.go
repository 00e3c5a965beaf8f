package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
)

func companyBody(number string) map[string]any {
	return map[string]any{
		"organisationNumber": number,
		"displayName":        "Fordonsföretaget (test)",
		"sniCode":            "29101",
		"municipality":       "1480",
		"employeeCount":      6000,
		"council":            "councils/fordon",
	}
}

// dateJSON is d days before today (Swedish date) as a JSON google.type.Date.
func dateJSON(daysAgo int) map[string]any {
	d := dates.Of(time.Now().AddDate(0, 0, -daysAgo))
	return map[string]any{"year": d.GetYear(), "month": d.GetMonth(), "day": d.GetDay()}
}

func isoDate(daysAgo int) string { return dates.String(dates.Of(time.Now().AddDate(0, 0, -daysAgo))) }

// The "done when", over REST through the gateway: a company with a
// real-format organisation number, found by lookup; a furlough of 120 and
// a redundancy notice, seen in the council's summary and in its demand
// signal; the four conversations held in order and refused out of order;
// wrong organisation numbers clear 400s that write nothing.
func TestCompaniesOverHTTP(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, false)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	c.ok("POST", "/v1/councils?councilId=fordon", council)

	got := c.ok("POST", "/v1/companies?companyId=volvo-torslanda", companyBody("5560125790"))
	if got["name"] != "companies/volvo-torslanda" || got["organisationNumber"] != "556012-5790" || got["etag"] == "" {
		t.Fatalf("company %v", got)
	}
	for _, spelling := range []string{"556012-5790", "5560125790", "165560125790"} {
		found := c.ok("GET", "/v1/companies:lookup?organisationNumber="+spelling, nil)
		if found["name"] != "companies/volvo-torslanda" {
			t.Fatalf("lookup %s: %v", spelling, found)
		}
	}
	if r := c.do("GET", "/v1/companies:lookup?organisationNumber=559990-0015", nil); r.status != http.StatusNotFound {
		t.Fatalf("lookup of an unknown number: %d %s", r.status, r.raw)
	}
	if r := c.do("POST", "/v1/companies", companyBody("556012-5790")); r.status != http.StatusConflict || !strings.Contains(r.raw, "companies/volvo-torslanda") {
		t.Fatalf("second company with the number: %d %s", r.status, r.raw)
	}

	// Wrong organisation numbers: 400 naming the field, nothing written.
	ctx := context.Background()
	for number, says := range map[string]string{
		"556012-5791":  "check digit",
		"55601-25790":  "hyphen",
		"5560125":      "7 digits",
		"55601X-5790":  "only digits",
		"121212-1212":  "personal identity number",
		"191212121212": "personal identity number",
	} {
		collectAudit(t, a, rdb)
		keys, digest := keyspaceDigest(t, rdb)
		r := c.do("POST", "/v1/companies", companyBody(number))
		if r.status != http.StatusBadRequest || !slices.Contains(violated(r), "company.organisationNumber") || !strings.Contains(r.raw, says) {
			t.Fatalf("%s: %d %s", number, r.status, r.raw)
		}
		if k, d := keyspaceDigest(t, rdb); k != keys || d != digest {
			t.Fatalf("%s: the refused request changed the store", number)
		}
	}
	bad := companyBody("559990-0015")
	bad["council"] = "councils/nowhere"
	if r := c.do("POST", "/v1/companies", bad); r.status != http.StatusBadRequest || !slices.Contains(violated(r), "company.council") {
		t.Fatalf("unknown council: %d %s", r.status, r.raw)
	}

	// A furlough of 120 and a notice of redundancy.
	furlough := c.ok("POST", "/v1/companies/volvo-torslanda/notices", map[string]any{
		"kind": "KIND_FURLOUGH", "affectedEmployees": 120, "noticeDate": dateJSON(40), "occupations": []string{"Montörer"}})
	if furlough["council"] != "councils/fordon" || furlough["municipality"] != "1480" {
		t.Fatalf("notice %v", furlough)
	}
	c.ok("POST", "/v1/companies/volvo-torslanda/notices?noticeId=varsel-1", map[string]any{
		"kind": "KIND_REDUNDANCY", "affectedEmployees": 300, "noticeDate": dateJSON(10), "effectiveDate": dateJSON(-60)})
	early := map[string]any{"kind": "KIND_REDUNDANCY", "affectedEmployees": 3, "noticeDate": dateJSON(10), "effectiveDate": dateJSON(11)}
	if r := c.do("POST", "/v1/companies/volvo-torslanda/notices", early); r.status != http.StatusBadRequest || !slices.Contains(violated(r), "notice.effectiveDate") {
		t.Fatalf("effective before the notice: %d %s", r.status, r.raw)
	}
	tooMany := map[string]any{"kind": "KIND_FURLOUGH", "affectedEmployees": 6001, "noticeDate": dateJSON(1)}
	if r := c.do("POST", "/v1/companies/volvo-torslanda/notices", tooMany); r.status != http.StatusBadRequest || !slices.Contains(violated(r), "notice.affectedEmployees") {
		t.Fatalf("more than the employees: %d %s", r.status, r.raw)
	}

	// The council's summary, dates as one ISO value each.
	sum := c.ok("GET", "/v1/companies/-/notices:summarize?council=councils/fordon&startDate="+isoDate(365)+"&endDate="+isoDate(0), nil)
	if rows := fmt.Sprint(sum["rows"]); !strings.Contains(rows, "KIND_REDUNDANCY") || !strings.Contains(rows, "affectedEmployees:300") ||
		!strings.Contains(rows, "KIND_FURLOUGH") || !strings.Contains(rows, "affectedEmployees:120") || !strings.Contains(rows, "municipality:1480") {
		t.Fatalf("summary %v", sum)
	}
	list := c.ok("GET", "/v1/companies/-/notices?filter="+url.QueryEscape("kind = KIND_FURLOUGH"), nil)
	if ns, _ := list["notices"].([]any); len(ns) != 1 {
		t.Fatalf("furloughs %v", list)
	}
	// The councils service follows the notices into its demand signal.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ds := c.ok("GET", "/v1/councils/fordon:demandSignal", nil)
		rows := fmt.Sprint(ds["rows"])
		if strings.Contains(rows, "affectedEmployees:120") && strings.Contains(rows, "affectedEmployees:300") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demand signal %v", ds)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The four conversations: out of order refused, in order held, once.
	for n := 1; n <= 4; n++ {
		c.ok("POST", fmt.Sprintf("/v1/companies/volvo-torslanda/coachingSessions?coachingSessionId=samtal-%d", n),
			map[string]any{"conversation": n, "coach": "Kompetenscoach, Göteborgsregionen", "heldOn": dateJSON(0)})
	}
	r := c.do("POST", "/v1/companies/volvo-torslanda/coachingSessions/samtal-2:hold", map[string]any{})
	if r.status != http.StatusBadRequest || r.body["code"] != float64(9) || !strings.Contains(r.raw, "conversation 1") {
		t.Fatalf("2 before 1: %d %s", r.status, r.raw)
	}
	for n := 1; n <= 4; n++ {
		held := c.ok("POST", fmt.Sprintf("/v1/companies/volvo-torslanda/coachingSessions/samtal-%d:hold", n),
			map[string]any{"notes": "Genomfört", "agreedActions": []string{"Kartlägga kompetens"}})
		if held["state"] != "STATE_HELD" {
			t.Fatalf("hold %d: %v", n, held)
		}
	}
	r = c.do("POST", "/v1/companies/volvo-torslanda/coachingSessions", map[string]any{"conversation": 3, "coach": "Coach"})
	if r.status != http.StatusConflict {
		t.Fatalf("conversation 3 again: %d %s", r.status, r.raw)
	}
	sessions := c.ok("GET", "/v1/companies/volvo-torslanda/coachingSessions", nil)
	if ss, _ := sessions["coachingSessions"].([]any); len(ss) != 4 || ss[0].(map[string]any)["conversation"] != float64(1) {
		t.Fatalf("sessions %v", sessions)
	}

	// Updates: PATCH with the mask from the body; a stale etag is a 409.
	cur := c.ok("GET", "/v1/companies/volvo-torslanda", nil)
	c.ok("PATCH", "/v1/companies/volvo-torslanda", map[string]any{"employeeCount": 5800, "etag": cur["etag"]})
	if r := c.do("PATCH", "/v1/companies/volvo-torslanda", map[string]any{"employeeCount": 5700, "etag": cur["etag"]}); r.status != http.StatusConflict {
		t.Fatalf("stale etag: %d %s", r.status, r.raw)
	}
	// Notices of the last 12 months keep the company on record.
	if r := c.do("DELETE", "/v1/companies/volvo-torslanda", nil); r.status != http.StatusBadRequest || r.body["code"] != float64(9) {
		t.Fatalf("delete with recent notices: %d %s", r.status, r.raw)
	}
	_ = ctx
}

// A company principal, with an API key bound to its company, sees and
// records its own and nothing of another company.
func TestCompanyKeyOverHTTP(t *testing.T) {
	a := start(t, testkit.Redis(t), false)
	staff := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	staff.ok("POST", "/v1/councils?councilId=fordon", council)
	staff.ok("POST", "/v1/companies?companyId=volvo", companyBody("556012-5790"))
	other := companyBody("559990-0015")
	other["displayName"] = "Ale Komponent (test)"
	staff.ok("POST", "/v1/companies?companyId=ale", other)
	staff.ok("POST", "/v1/companies/ale/notices", map[string]any{"kind": "KIND_FURLOUGH", "affectedEmployees": 5, "noticeDate": dateJSON(3)})
	k := staff.ok("POST", "/v1/apiKeys", map[string]any{"displayName": "Volvos HR-system", "role": "ROLE_COMPANY", "subject": "companies/volvo"})
	volvo := client{t, "http://" + a.HTTPAddr, k["secret"].(string)}

	volvo.ok("GET", "/v1/companies/volvo", nil)
	volvo.ok("POST", "/v1/companies/volvo/notices", map[string]any{"kind": "KIND_REDUNDANCY", "affectedEmployees": 12, "noticeDate": dateJSON(2)})
	own := volvo.ok("GET", "/v1/companies/-/notices", nil)
	if ns, _ := own["notices"].([]any); len(ns) != 1 || !strings.HasPrefix(ns[0].(map[string]any)["name"].(string), "companies/volvo/") {
		t.Fatalf("own notices %v", own)
	}
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/companies/ale"},
		{"GET", "/v1/companies/ale/notices"},
		{"GET", "/v1/companies"},
		{"GET", "/v1/companies:lookup?organisationNumber=559990-0015"},
		{"DELETE", "/v1/companies/volvo"},
		{"GET", "/v1/companies/-/notices:summarize?startDate=2026-01-01&endDate=2026-12-31"},
	} {
		if r := volvo.do(req.method, req.path, nil); r.status != http.StatusForbidden {
			t.Errorf("%s %s: %d %s", req.method, req.path, r.status, r.raw)
		}
	}
	if r := volvo.do("POST", "/v1/companies/ale/notices", map[string]any{"kind": "KIND_FURLOUGH", "affectedEmployees": 5, "noticeDate": dateJSON(3)}); r.status != http.StatusForbidden {
		t.Errorf("a notice for another company: %d %s", r.status, r.raw)
	}
}
