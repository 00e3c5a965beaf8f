package app_test

import (
	"encoding/csv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
)

// getCSV fetches a CSV report: status, headers and the rows (after its
// byte-order mark), parsed with encoding/csv.
func getCSV(t *testing.T, c client, path string, comma rune) (int, http.Header, [][]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, resp.Header, nil
	}
	body, ok := strings.CutPrefix(string(raw), "\uFEFF")
	if !ok {
		t.Fatalf("no byte-order mark: %q", raw[:min(10, len(raw))])
	}
	r := csv.NewReader(strings.NewReader(body))
	r.Comma = comma
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, body)
	}
	return resp.StatusCode, resp.Header, rows
}

// The project report through the gateway, over HTTP with every service
// real: the demo's project as JSON and as CSV, whose totals agree; the
// call-off's value as procurement awarded it; a withdrawal shown in both;
// auditors and partners may read it, a council may not.
func TestProjectReportOverHTTP(t *testing.T) {
	a := start(t, testkit.Redis(t), true)
	staff := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	const path = "/v1/projects/esf-2020-00312"

	// The demo: demo-01 … demo-16 in the seats of its open offering, four
	// waiting, demo-21 … demo-24 on its running one (genders by turns:
	// woman, man, woman, man, non-binary); both from one call-off of
	// 240 000 SEK, counted once.
	r := staff.ok("GET", path+":report", nil)
	if r["project"] != "projects/esf-2020-00312" || r["referenceNumber"] != "2020/00312" || r["participants"] != float64(20) {
		t.Fatalf("report %v", r)
	}
	if v := r["callOffValue"].(map[string]any); v["units"] != "240000" || v["currencyCode"] != "SEK" {
		t.Errorf("call-off value %v", v)
	}
	if v := r["costPerParticipant"].(map[string]any); v["units"] != "12000" {
		t.Errorf("cost per participant %v", v)
	}
	counts := func(r map[string]any) map[string]float64 {
		out := map[string]float64{}
		for _, b := range r["breakdowns"].([]any) {
			bd := b.(map[string]any)
			cs, _ := bd["counts"].([]any) // left out when empty
			for _, c := range cs {
				cm := c.(map[string]any)
				n, _ := cm["count"].(float64)
				out[bd["dimension"].(string)+"/"+cm["value"].(string)] = n
			}
		}
		return out
	}
	got := counts(r)
	for k, want := range map[string]float64{"gender/GENDER_WOMAN": 9, "gender/GENDER_MAN": 8, "gender/GENDER_NON_BINARY": 3,
		"enrolment_state/STATE_ENROLLED": 20, "enrolment_state/STATE_WAITLISTED": 4} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], want, got)
		}
	}

	// A seat given up: demo-03 (a woman) counts no more, demo-17 (a man),
	// first on the waitlist, takes the seat and counts; still twenty.
	staff.ok("POST", "/v1/offerings/cnc-operatorer/enrolments/demo-03:withdraw", map[string]any{"reason": "Nytt arbete"})
	r = staff.ok("GET", path+":report", nil)
	got = counts(r)
	if r["participants"] != float64(20) || got["enrolment_state/STATE_WITHDRAWN"] != 1 || got["enrolment_state/STATE_ENROLLED"] != 20 ||
		got["enrolment_state/STATE_WAITLISTED"] != 3 || got["gender/GENDER_WOMAN"] != 8 || got["gender/GENDER_MAN"] != 9 {
		t.Errorf("after a withdrawal: participants %v, states %v", r["participants"], got)
	}

	status, h, rows := getCSV(t, staff, path+"/report.csv", ',')
	if status != http.StatusOK || h.Get("Content-Type") != "text/csv; charset=utf-8" ||
		h.Get("Content-Disposition") != `attachment; filename="2020-00312.csv"` {
		t.Fatalf("CSV: %d %v", status, h)
	}
	table := map[string][]string{}
	for _, row := range rows[1:] {
		table[row[0]+"/"+row[1]] = row
	}
	if table["participants/"][2] != "20" {
		t.Errorf("CSV participants %q", table["participants/"])
	}
	sums := map[string]int{}
	for k, want := range got {
		row := table[k]
		if row == nil {
			t.Errorf("CSV has no row %s", k)
			continue
		}
		n, err := strconv.Atoi(row[2])
		if err != nil || float64(n) != want {
			t.Errorf("CSV %s = %q, JSON %v", k, row[2], want)
		}
		sums[row[0]] += n
	}
	for _, dim := range []string{"gender", "age_band", "labour_market_status", "education_level", "municipality", "employer_council"} {
		if sums[dim] != 20 {
			t.Errorf("the CSV's %s rows sum to %d, the JSON report has 20 participants", dim, sums[dim])
		}
	}
	if sums["enrolment_state"] != 24 {
		t.Errorf("the CSV's enrolment states sum to %d of 24 enrolments", sums["enrolment_state"])
	}
	if table["cost/call_off_value"][5] != "240000.00" || table["cost/cost_per_participant"][5] != "12000.00" {
		t.Errorf("cost rows %q %q", table["cost/call_off_value"], table["cost/cost_per_participant"])
	}
	if _, _, semi := getCSV(t, staff, path+"/report.csv?delimiter=semicolon", ';'); len(semi) != len(rows) {
		t.Errorf("%d rows with semicolons, %d with commas", len(semi), len(rows))
	}
	if r := staff.do("GET", path+"/report.csv?delimiter=tab", nil); r.status != http.StatusBadRequest || !strings.Contains(r.raw, `"field":"delimiter"`) {
		t.Errorf("a bad delimiter: %d %s", r.status, r.raw)
	}
	if r := staff.do("GET", "/v1/projects/finns-inte/report.csv", nil); r.status != http.StatusNotFound {
		t.Errorf("no such project: %d %s", r.status, r.raw)
	}

	// Aggregates only: auditors and partners read it, a council does not.
	key := func(role, subject string) client {
		body := map[string]any{"displayName": "rapport " + role, "role": role}
		if subject != "" {
			body["subject"] = subject
		}
		secret, _ := staff.ok("POST", "/v1/apiKeys", body)["secret"].(string)
		return client{t, staff.base, secret}
	}
	for _, c := range []struct {
		who    client
		status int
	}{{key("ROLE_AUDITOR", ""), 200}, {key("ROLE_PARTNER", ""), 200}, {key("ROLE_COUNCIL", "councils/fordon"), 403}} {
		if r := c.who.do("GET", path+":report", nil); r.status != c.status {
			t.Errorf("JSON: %d %s, want %d", r.status, r.raw, c.status)
		}
		if st, _, _ := getCSV(t, c.who, path+"/report.csv", ','); st != c.status {
			t.Errorf("CSV: %d, want %d", st, c.status)
		}
	}
}
