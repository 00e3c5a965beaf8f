package app_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/app"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
)

// Skatteverket's example personnummer (SKV 704) in its 10-digit form, and
// a samordningsnummer.
const (
	pnr10        = "640823-3234"
	coordination = "19701063-2391"
)

var vastkraftProject = map[string]any{
	"referenceNumber": "KN-VK-2026", "displayName": "VästKraft", "funder": "Europeiska socialfonden",
	"startDate": map[string]any{"year": 2026, "month": 1, "day": 1}, "endDate": map[string]any{"year": 2099, "month": 12, "day": 31},
	"budget": map[string]any{"currencyCode": "SEK", "units": "40000000"},
	"region": []string{"1480", "1481", "1440"},
	"eligibleTargetGroups": []string{"TARGET_GROUP_EMPLOYED_AT_RISK", "TARGET_GROUP_NOTIFIED", "TARGET_GROUP_LAID_OFF",
		"TARGET_GROUP_JOB_SEEKER"},
	"targets": map[string]any{"participants": 3500, "women": 1000, "employed": 2500, "jobSeekers": 1000},
}

func participantBody(pnr, given, family string) map[string]any {
	return map[string]any{
		"personalIdentityNumber": pnr, "givenName": given, "familyName": family, "gender": "GENDER_WOMAN",
		"municipality": "1480", "labourMarketStatus": "LABOUR_MARKET_STATUS_NOTIFIED", "educationLevel": "EDUCATION_LEVEL_ISCED_3_4",
	}
}

// Projects and participants over REST: targets, masking by default and
// view=FULL for staff only, the lookup, and bad input refused by JSON path
// with nothing written.
func TestProjectsAndParticipantsOverHTTP(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, false)
	staff := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}

	p := staff.ok("POST", "/v1/projects?projectId=vastkraft", vastkraftProject)
	if p["name"] != "projects/vastkraft" || p["state"] != "STATE_ACTIVE" || p["targets"].(map[string]any)["jobSeekers"] != float64(1000) {
		t.Fatalf("project %v", p)
	}
	r := staff.do("POST", "/v1/projects", vastkraftProject)
	if r.status != http.StatusConflict || !strings.Contains(r.raw, "projects/vastkraft") {
		t.Fatalf("duplicate reference: %d %s", r.status, r.raw)
	}

	got := staff.ok("POST", "/v1/participants", participantBody(pnr10, "Märta", "Öberg"))
	name := got["name"].(string)
	if got["personalIdentityNumber"] != "19640823-****" || got["familyName"] != "Ö." || got["givenName"] != "Märta" {
		t.Fatalf("created %v", got)
	}
	full := staff.ok("GET", "/v1/"+name+"?view=FULL", nil)
	if full["personalIdentityNumber"] != "19640823-3234" || full["familyName"] != "Öberg" {
		t.Fatalf("full %v", full)
	}
	found := staff.ok("GET", "/v1/participants:lookup?personalIdentityNumber="+url.QueryEscape("196408233234"), nil)
	if found["name"] != name || found["personalIdentityNumber"] != "19640823-****" {
		t.Fatalf("lookup %v", found)
	}
	if r := staff.do("GET", "/v1/participants:lookup?personalIdentityNumber=20170101-2393", nil); r.status != http.StatusNotFound {
		t.Fatalf("lookup of nobody: %d %s", r.status, r.raw)
	}
	if c := staff.ok("POST", "/v1/participants", participantBody(coordination, "Alva", "Demosson")); c["personalIdentityNumber"] != "19701063-****" {
		t.Fatalf("samordningsnummer %v", c)
	}

	collectAudit(t, a, rdb)
	keys, before := keyspaceDigest(t, rdb)
	for _, c := range []struct {
		name   string
		body   map[string]any
		status int
		field  string
	}{
		{"wrong check digit", participantBody("640823-3235", "A", "B"), 400, "participant.personalIdentityNumber"},
		{"30 February", participantBody("19900230-1239", "A", "B"), 400, "participant.personalIdentityNumber"},
		{"future", participantBody("20991231-1230", "A", "B"), 400, "participant.personalIdentityNumber"},
		{"11 digits", participantBody("19640823323", "A", "B"), 400, "participant.personalIdentityNumber"},
		{"letters", participantBody("64O823-3234", "A", "B"), 400, "participant.personalIdentityNumber"},
		{"unknown municipality", func() map[string]any {
			b := participantBody("20170101-2393", "A", "B")
			b["municipality"] = "9999"
			return b
		}(), 400, "participant.municipality"},
		{"duplicate", participantBody("19640823-3234", "A", "B"), 409, ""},
	} {
		r := staff.do("POST", "/v1/participants", c.body)
		if r.status != c.status || (c.field != "" && !slices.Contains(violated(r), c.field)) {
			t.Errorf("%s: %d %s", c.name, r.status, r.raw)
		}
		if strings.Contains(r.raw, "3234") || strings.Contains(r.raw, "1239") {
			t.Errorf("%s: the answer repeats the number: %s", c.name, r.raw)
		}
	}
	bad := map[string]any{}
	for k, v := range vastkraftProject {
		bad[k] = v
	}
	bad["targets"] = map[string]any{"participants": 10, "women": 11}
	if r := staff.do("POST", "/v1/projects", bad); r.status != 400 || !slices.Contains(violated(r), "project.targets.women") {
		t.Errorf("women above participants: %d %s", r.status, r.raw)
	}
	collectAudit(t, a, rdb)
	if k, d := keyspaceDigest(t, rdb); k != keys || d != before {
		t.Fatalf("refused requests changed the store (%d → %d keys)", keys, k)
	}
}

// The personal data of a run through the gateway reaches no log line of
// the whole process, no Redis key or value, no stream entry.
func TestNoPersonalDataInClearTextThroughTheGateway(t *testing.T) {
	rdb := testkit.Redis(t)
	a, logs := startWith(t, rdb, app.Config{})
	staff := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	staff.ok("POST", "/v1/projects?projectId=vastkraft", vastkraftProject)
	p := staff.ok("POST", "/v1/participants?requestId=scan-1", participantBody(pnr10, "Zlatanka", "Öbergsdotter"))
	name := p["name"].(string)
	staff.ok("GET", "/v1/"+name+"?view=FULL", nil)
	staff.ok("GET", "/v1/participants?view=FULL", nil)
	staff.ok("GET", "/v1/participants:lookup?personalIdentityNumber=640823-3234&view=FULL", nil)
	staff.do("POST", "/v1/participants", participantBody("19640823-3234", "Zlatanka", "Öbergsdotter")) // a duplicate
	staff.do("POST", "/v1/participants", participantBody("19640823-3243", "Zlatanka", "Öbergsdotter")) // a bad number
	staff.ok("PATCH", "/v1/"+name, map[string]any{"familyName": "Järnbärarsson"})
	collectAudit(t, a, rdb)

	forms := []string{"196408233234", "19640823-3234", "640823-3234", "6408233234", "19640823", "Zlatanka", "Öbergsdotter", "Järnbärarsson"}
	keys := testkit.Keys(t, rdb, "*")
	if len(keys) < 20 {
		t.Fatalf("%d keys", len(keys))
	}
	for _, k := range keys {
		v := dumpValue(t, rdb, k)
		for _, f := range forms {
			if strings.Contains(k, f) || strings.Contains(v, f) {
				t.Errorf("Redis key %s holds %q in clear text", k, f)
			}
		}
	}
	log := logs.String()
	if !strings.Contains(log, "/v1/participants") {
		t.Fatal("the log holds no request: the scan would prove nothing")
	}
	for _, f := range forms {
		if strings.Contains(log, f) {
			t.Errorf("the log holds %q", f)
		}
	}
}

// dumpValue is a key's whole value as text: string, hash fields, set and
// sorted-set members, stream entries with their fields.
func dumpValue(t *testing.T, rdb redis.UniversalClient, key string) string {
	t.Helper()
	ctx := t.Context()
	var b strings.Builder
	switch rdb.Type(ctx, key).Val() {
	case "string":
		b.WriteString(rdb.Get(ctx, key).Val())
	case "hash":
		for f, v := range rdb.HGetAll(ctx, key).Val() {
			b.WriteString(f + "=" + v + "\n")
		}
	case "set":
		b.WriteString(strings.Join(rdb.SMembers(ctx, key).Val(), "\n"))
	case "zset":
		b.WriteString(strings.Join(rdb.ZRange(ctx, key, 0, -1).Val(), "\n"))
	case "stream":
		for _, m := range rdb.XRange(ctx, key, "-", "+").Val() {
			for f, v := range m.Values {
				fmt.Fprintf(&b, "%s %s=%v\n", m.ID, f, v)
			}
		}
	case "list":
		b.WriteString(strings.Join(rdb.LRange(ctx, key, 0, -1).Val(), "\n"))
	}
	return b.String()
}

// A participant's employer is checked with the companies service over
// gRPC (the all-in-one's own server, as in a cluster), and its sector
// council recorded; one it does not know is a 400 that writes nothing.
func TestParticipantsEmployerCheckedWithCompanies(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, true)
	staff := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	body := participantBody("20170101-2393", "Saga", "Exempelberg")
	body["employer"] = "companies/molndals-platpress"
	p := staff.ok("POST", "/v1/participants?participantId=saga", body)
	if p["employer"] != "companies/molndals-platpress" || p["employerCouncil"] != "councils/teknik" {
		t.Fatalf("participant %v", p)
	}
	up := staff.ok("PATCH", "/v1/participants/saga", map[string]any{"employer": "companies/torslanda-drivlina"})
	if up["employerCouncil"] != "councils/fordon" {
		t.Fatalf("after a new employer %v", up)
	}
	collectAudit(t, a, rdb)
	keys, before := keyspaceDigest(t, rdb)
	body = participantBody(pnr10, "A", "B")
	body["employer"] = "companies/finns-inte"
	if r := staff.do("POST", "/v1/participants", body); r.status != 400 || !slices.Contains(violated(r), "participant.employer") {
		t.Fatalf("unknown employer: %d %s", r.status, r.raw)
	}
	if r := staff.do("PATCH", "/v1/participants/saga", map[string]any{"employer": "companies/finns-inte"}); r.status != 400 ||
		!slices.Contains(violated(r), "participant.employer") {
		t.Fatalf("unknown employer on update: %d %s", r.status, r.raw)
	}
	collectAudit(t, a, rdb)
	if k, d := keyspaceDigest(t, rdb); k != keys || d != before {
		t.Fatalf("refused requests changed the store (%d → %d keys)", keys, k)
	}
	// The demo's employed participants work at its companies.
	demo := staff.ok("GET", "/v1/participants/demo-01", nil)
	if demo["employerCouncil"] == nil || demo["personalIdentityNumber"] == nil {
		t.Fatalf("demo participant %v", demo)
	}
}

// The "done when", through the gateway with every service real: a
// project with its targets, an offering from a call-off the procurement
// service awarded, participants registered (masked), the offering filled
// and its waitlist too, a withdrawal promoting position 1.
func TestEnrolmentDoneWhenOverHTTP(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, true)
	staff := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	now := time.Now()
	dateOf := func(t time.Time) map[string]any {
		return map[string]any{"year": t.Year(), "month": int(t.Month()), "day": t.Day()}
	}
	project := map[string]any{}
	for k, v := range vastkraftProject {
		project[k] = v
	}
	project["referenceNumber"] = "KN-2026-FORDON"
	project["startDate"], project["endDate"] = dateOf(now.AddDate(0, -1, 0)), dateOf(now.AddDate(2, 0, 0))
	p := staff.ok("POST", "/v1/projects?projectId=fordon-omstallning", project)
	if p["targets"].(map[string]any)["participants"] != float64(3500) {
		t.Fatalf("project %v", p)
	}

	// A call-off for the project, offered by rank and accepted: AWARDED.
	spec := map[string]any{"skills": []string{"skills/hogvoltssakerhet"}, "days": 3, "participants": 3, "municipality": "1480",
		"latestStart": dateOf(now.AddDate(0, 2, 0))}
	callOff := map[string]any{"frameworkAgreement": "frameworkAgreements/teknik-industri", "lot": "teknik",
		"need": "councils/fordon/needs/elektrifiering-service", "project": "projects/fordon-omstallning",
		"value": map[string]any{"currencyCode": "SEK", "units": "150000"}, "awardMethod": "AWARD_METHOD_RANK_ORDER", "specification": spec}
	offered := staff.ok("POST", "/v1/callOffs?callOffId=hogvolt", callOff)
	sessions := []map[string]any{}
	for i := range 3 {
		sessions = append(sessions, map[string]any{"date": dateOf(now.AddDate(0, 1, i)),
			"startTime": map[string]any{"hours": 8}, "endTime": map[string]any{"hours": 16}, "location": "Torslanda"})
	}
	offering := map[string]any{"callOff": "callOffs/hogvolt", "project": "projects/fordon-omstallning", "title": "Högvoltssäkerhet",
		"sessions": sessions, "capacity": 3, "municipality": "1480", "mode": "MODE_WORKPLACE", "registrationDeadline": dateOf(now.AddDate(0, 0, 14))}
	// Not yet awarded: refused, naming its state.
	if r := staff.do("POST", "/v1/offerings", offering); r.status != 400 || !strings.Contains(r.raw, "CALL_OFF_STATE") ||
		!strings.Contains(r.raw, offered["state"].(string)) {
		t.Fatalf("from an offered call-off: %d %s", r.status, r.raw)
	}
	if c := staff.ok("POST", "/v1/callOffs/hogvolt:accept", map[string]any{}); c["state"] != "STATE_AWARDED" {
		t.Fatalf("accepted %v", c)
	}
	// The demo's call-off is for another project.
	other := map[string]any{}
	for k, v := range offering {
		other[k] = v
	}
	other["callOff"] = "callOffs/cnc-operatorer-1"
	if r := staff.do("POST", "/v1/offerings", other); r.status != 400 || !strings.Contains(r.raw, "CALL_OFF_PROJECT") {
		t.Fatalf("another project's call-off: %d %s", r.status, r.raw)
	}
	if r := staff.do("POST", "/v1/offerings?offeringId=x", map[string]any{"callOff": "callOffs/finns-inte", "project": "projects/fordon-omstallning",
		"title": "X", "sessions": sessions, "capacity": 3, "municipality": "1480", "mode": "MODE_WORKPLACE",
		"registrationDeadline": dateOf(now.AddDate(0, 0, 14))}); r.status != 400 || !slices.Contains(violated(r), "offering.callOff") {
		t.Fatalf("unknown call-off: %d %s", r.status, r.raw)
	}
	o := staff.ok("POST", "/v1/offerings?offeringId=hogvolt", offering)
	if o["state"] != "STATE_PLANNED" || o["days"] != float64(3) || o["provider"] == nil {
		t.Fatalf("offering %v", o)
	}
	if o = staff.ok("POST", "/v1/offerings/hogvolt:open", map[string]any{}); o["state"] != "STATE_OPEN" {
		t.Fatalf("open %v", o)
	}

	// Five participants, masked; three seats and two on the waitlist.
	var enrolments []map[string]any
	for i, pnr := range []string{"19640823-3234", "20170101-2393", "19701063-2391", "19121212-1212", "19800808-0008"} {
		body := participantBody(pnr, "Deltagare", fmt.Sprintf("Nummer%d", i+1))
		got := staff.do("POST", fmt.Sprintf("/v1/participants?participantId=d%d", i+1), body)
		if got.status != 200 {
			if i == 4 { // an invalid check digit: refused, and we go on with four
				if got.status != 400 {
					t.Fatalf("bad number: %d %s", got.status, got.raw)
				}
				continue
			}
			t.Fatalf("participant %d: %d %s", i+1, got.status, got.raw)
		}
		if n := got.body["personalIdentityNumber"].(string); !strings.HasSuffix(n, "-****") {
			t.Fatalf("not masked: %v", got.body)
		}
		enrolments = append(enrolments, staff.ok("POST", "/v1/offerings/hogvolt/enrolments?enrolmentId="+fmt.Sprintf("e%d", i+1),
			map[string]any{"participant": fmt.Sprintf("participants/d%d", i+1)}))
	}
	states := []string{}
	for _, e := range enrolments {
		states = append(states, fmt.Sprintf("%v %v", e["state"], e["waitlistPosition"]))
	}
	if strings.Join(states, ",") != "STATE_ENROLLED <nil>,STATE_ENROLLED <nil>,STATE_ENROLLED <nil>,STATE_WAITLISTED 1" {
		t.Fatalf("states %v", states)
	}
	// One more waitlisted, from the demo's people; then an ineligible one.
	staff.ok("POST", "/v1/offerings/hogvolt/enrolments?enrolmentId=e6", map[string]any{"participant": "participants/demo-09"})
	far := participantBody("19900101-0017", "Långt", "Borta")
	far["municipality"] = "0180" // Stockholm
	staff.ok("POST", "/v1/participants?participantId=far", far)
	if r := staff.do("POST", "/v1/offerings/hogvolt/enrolments", map[string]any{"participant": "participants/far"}); r.status != 400 ||
		!strings.Contains(r.raw, "MUNICIPALITY") {
		t.Fatalf("outside the region: %d %s", r.status, r.raw)
	}
	got := staff.ok("GET", "/v1/offerings/hogvolt", nil)
	if got["enrolledCount"] != float64(3) || got["waitlistedCount"] != float64(2) {
		t.Fatalf("counts %v", got)
	}
	wait := staff.ok("GET", "/v1/offerings/hogvolt/enrolments?orderBy=waitlist_position", nil)["enrolments"].([]any)
	if len(wait) != 2 || wait[0].(map[string]any)["name"] != "offerings/hogvolt/enrolments/e4" {
		t.Fatalf("waitlist %v", wait)
	}

	// A seat is given up: position 1 gets it, position 2 moves up.
	staff.ok("POST", "/v1/offerings/hogvolt/enrolments/e2:withdraw", map[string]any{"reason": "Nytt jobb"})
	if e := staff.ok("GET", "/v1/offerings/hogvolt/enrolments/e4", nil); e["state"] != "STATE_ENROLLED" || e["promoteTime"] == nil {
		t.Fatalf("position 1 after the withdrawal: %v", e)
	}
	if e := staff.ok("GET", "/v1/offerings/hogvolt/enrolments/e6", nil); e["waitlistPosition"] != float64(1) {
		t.Fatalf("position 2 after the withdrawal: %v", e)
	}
	got = staff.ok("GET", "/v1/offerings/hogvolt", nil)
	if got["enrolledCount"] != float64(3) || got["waitlistedCount"] != float64(1) {
		t.Fatalf("counts after %v", got)
	}
	enrolled := staff.ok("GET", "/v1/offerings/hogvolt/enrolments?filter="+url.QueryEscape("state = STATE_ENROLLED"), nil)["enrolments"].([]any)
	if len(enrolled) != 3 {
		t.Fatalf("enrolled %v", enrolled)
	}
	if mine := staff.ok("GET", "/v1/participants/d2/enrolments", nil)["enrolments"].([]any); len(mine) != 1 ||
		mine[0].(map[string]any)["state"] != "STATE_WITHDRAWN" {
		t.Fatalf("the participant's enrolments %v", mine)
	}

	// The demo: an open offering of the demo call-off, 16 seats taken and
	// 4 waiting.
	demo := staff.ok("GET", "/v1/offerings/cnc-operatorer", nil)
	if demo["state"] != "STATE_OPEN" || demo["enrolledCount"] != float64(16) || demo["waitlistedCount"] != float64(4) {
		t.Fatalf("demo offering %v", demo)
	}
}
