package app_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/demo"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
)

// swedishDate is t's date in Sweden, as JSON.
func swedishDate(t *testing.T, at time.Time) map[string]any {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		t.Fatal(err)
	}
	at = at.In(loc)
	return map[string]any{"year": at.Year(), "month": int(at.Month()), "day": at.Day()}
}

// Part 2 of enrolment through the gateway, on the demo's running course:
// attendance recorded one by one and for a whole session (a bad record
// refuses the batch, naming it, and writes nothing), a completion with its
// event, outcomes at exit and a six-month one refused, and an erasure after
// which the participant's number is nowhere in Redis and registers again.
func TestAttendanceCompletionOutcomesErasureOverHTTP(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, true)
	staff := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	today, tomorrow := swedishDate(t, time.Now()), swedishDate(t, time.Now().Add(24*time.Hour))
	const course = "/v1/offerings/cnc-pagaende"

	o := staff.ok("GET", course, nil)
	if o["state"] != "STATE_RUNNING" || o["enrolledCount"] != float64(4) {
		t.Fatalf("the demo's running course %v", o)
	}
	r := staff.ok("POST", course+"/enrolments/demo-21:recordAttendance", map[string]any{"sessionDate": today, "status": "ATTENDANCE_STATUS_PRESENT"})
	if r["hours"] != 7.5 || r["enrolment"] != "offerings/cnc-pagaende/enrolments/demo-21" {
		t.Fatalf("recorded %v", r)
	}

	collectAudit(t, a, rdb)
	keys, before := keyspaceDigest(t, rdb)
	bad := staff.do("POST", course+":recordAttendance", map[string]any{"records": []any{
		map[string]any{"enrolment": "offerings/cnc-pagaende/enrolments/demo-22", "sessionDate": today, "status": "ATTENDANCE_STATUS_PRESENT"},
		map[string]any{"enrolment": "offerings/cnc-pagaende/enrolments/demo-23", "sessionDate": tomorrow, "status": "ATTENDANCE_STATUS_ABSENT"},
	}})
	if bad.status != http.StatusBadRequest || !slices.Contains(violated(bad), "records[1].sessionDate") {
		t.Fatalf("a batch with tomorrow's session: %d %s", bad.status, bad.raw)
	}
	if r := staff.do("POST", course+"/enrolments/demo-22:recordAttendance", map[string]any{"sessionDate": today,
		"status": "ATTENDANCE_STATUS_ABSENT", "hours": 2}); r.status != 400 || !slices.Contains(violated(r), "hours") {
		t.Fatalf("absent with hours: %d %s", r.status, r.raw)
	}
	if r := staff.do("POST", course+"/enrolments/demo-22:complete", map[string]any{"result": "RESULT_PASSED"}); r.status != 400 ||
		!strings.Contains(r.raw, "ATTENDANCE_RECORDED") {
		t.Fatalf("completing without attendance: %d %s", r.status, r.raw)
	}
	if r := staff.do("POST", "/v1/offerings/cnc-operatorer/enrolments/demo-01:complete", map[string]any{"result": "RESULT_PASSED"}); r.status != 400 ||
		!strings.Contains(r.raw, "OFFERING_STATE") {
		t.Fatalf("completing on an open offering: %d %s", r.status, r.raw)
	}
	collectAudit(t, a, rdb)
	if k, d := keyspaceDigest(t, rdb); k != keys || d != before {
		t.Fatalf("refused requests changed the store (%d → %d keys)", keys, k)
	}

	batch := staff.ok("POST", course+":recordAttendance", map[string]any{"records": []any{
		map[string]any{"enrolment": "offerings/cnc-pagaende/enrolments/demo-22", "sessionDate": today, "status": "ATTENDANCE_STATUS_PRESENT", "hours": 6},
		map[string]any{"enrolment": "offerings/cnc-pagaende/enrolments/demo-23", "sessionDate": today, "status": "ATTENDANCE_STATUS_ABSENT"},
		map[string]any{"enrolment": "offerings/cnc-pagaende/enrolments/demo-24", "sessionDate": today, "status": "ATTENDANCE_STATUS_EXCUSED"},
	}})
	if recs, _ := batch["records"].([]any); len(recs) != 3 {
		t.Fatalf("batch %v", batch)
	}
	if l := staff.ok("GET", course+"/enrolments/demo-22/attendance", nil)["records"].([]any); len(l) != 1 || l[0].(map[string]any)["hours"] != float64(6) {
		t.Fatalf("attendance %v", l)
	}

	done := staff.ok("POST", course+"/enrolments/demo-21:complete", map[string]any{"result": "RESULT_PASSED"})
	if skills, _ := done["skills"].([]any); done["state"] != "STATE_COMPLETED" || done["result"] != "RESULT_PASSED" ||
		len(skills) != 1 || skills[0] != "skills/cnc-programmering" {
		t.Fatalf("completed %v", done)
	}
	if o := staff.ok("GET", course, nil); o["enrolledCount"] != float64(3) {
		t.Fatalf("after a completion %v", o)
	}
	if n := streamCount(t, rdb, "kompetensnav.enrolment.v1.enrolment.completed"); n != 1 {
		t.Fatalf("%d enrolment.completed events", n)
	}

	exit := staff.ok("POST", "/v1/participants/demo-21:recordOutcome", map[string]any{"project": "projects/esf-2020-00312",
		"timing": "OUTCOME_TIMING_EXIT", "outcome": "OUTCOME_NEW_JOB", "date": today})
	if exit["name"] != "participants/demo-21/outcomes/esf-2020-00312-exit" {
		t.Fatalf("exit outcome %v", exit)
	}
	if r := staff.do("POST", "/v1/participants/demo-21:recordOutcome", map[string]any{"project": "projects/esf-2020-00312",
		"timing": "OUTCOME_TIMING_SIX_MONTHS", "outcome": "OUTCOME_NEW_JOB", "date": today}); r.status != 400 || !strings.Contains(r.raw, "SIX_MONTHS_AFTER_EXIT") {
		t.Fatalf("a six-month outcome on the day of exit: %d %s", r.status, r.raw)
	}
	if l := staff.ok("GET", "/v1/participants/demo-21/outcomes", nil)["outcomes"].([]any); len(l) != 1 {
		t.Fatalf("outcomes %v", l)
	}

	// demo-22 (the demo's number 21) is erased.
	number := demo.Number(21)
	erased := staff.ok("POST", "/v1/participants/demo-22:erase", map[string]any{"reason": "Begäran om radering (art. 17)"})
	if erased["state"] != "STATE_ERASED" || erased["eraseTime"] == nil || len(erased) != 4 {
		t.Fatalf("erased %v", erased)
	}
	if got := staff.ok("GET", "/v1/participants/demo-22?view=FULL", nil); len(got) != 4 || got["state"] != "STATE_ERASED" {
		t.Fatalf("read after erasure %v", got)
	}
	if r := staff.do("GET", "/v1/participants:lookup?personalIdentityNumber="+number, nil); r.status != http.StatusNotFound {
		t.Fatalf("lookup after erasure: %d %s", r.status, r.raw)
	}
	if again := staff.ok("POST", "/v1/participants/demo-22:erase", map[string]any{"reason": "igen"}); again["eraseTime"] != erased["eraseTime"] {
		t.Fatalf("erased again %v", again)
	}
	if n := streamCount(t, rdb, "kompetensnav.enrolment.v1.participant.erased"); n != 1 {
		t.Fatalf("%d participant.erased events", n)
	}
	// The enrolment and its attendance stay (they count in the report).
	if l := staff.ok("GET", course+"/enrolments/demo-22/attendance", nil)["records"].([]any); len(l) != 1 {
		t.Fatalf("attendance after erasure %v", l)
	}
	collectAudit(t, a, rdb)
	digits := strings.ReplaceAll(number, "-", "")
	forms := []string{digits, number, digits[2:8] + "-" + digits[8:], digits[2:]}
	for _, k := range testkit.Keys(t, rdb, "*") {
		v := dumpValue(t, rdb, k)
		for _, f := range forms {
			if strings.Contains(k, f) || strings.Contains(v, f) {
				t.Errorf("Redis key %s holds %q after erasure", k, f)
			}
		}
	}
	body := participantBody(number, "Åter", "Registrerad")
	if p := staff.ok("POST", "/v1/participants?participantId=demo-22-igen", body); p["state"] != "STATE_ACTIVE" {
		t.Fatalf("registered again %v", p)
	}
	if found := staff.ok("GET", "/v1/participants:lookup?personalIdentityNumber="+number, nil); found["name"] != "participants/demo-22-igen" {
		t.Fatalf("lookup %v", found)
	}
}

// streamCount is how many entries of the enrolment event stream are of typ.
func streamCount(t *testing.T, rdb redis.UniversalClient, typ string) int {
	t.Helper()
	msgs, err := rdb.XRange(t.Context(), "kn:{enrolment}:events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if m.Values["type"] == typ {
			n++
		}
	}
	return n
}
