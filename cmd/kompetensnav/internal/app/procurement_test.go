package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
)

func dateOf(t time.Time) map[string]any {
	return map[string]any{"year": t.Year(), "month": int(t.Month()), "day": t.Day()}
}

func sek(units int) map[string]any {
	return map[string]any{"currencyCode": "SEK", "units": fmt.Sprint(units)}
}

// eventually polls for up to ten seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The "done when", over REST through the gateway against the whole
// platform: providers and a test centre registered, an agreement with two
// lots and ranked providers activated, an approved need seen in the queue
// and called off by rank (with a decline, accepted by the provider with its
// own key), another by mini-competition, the need moving to IN_PROCUREMENT
// by councils' consumer of procurement's events, the ceiling holding, and
// the OCDS package downloaded.
func TestProcurementOverHTTP(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, false)
	base := "http://" + a.HTTPAddr
	staff := client{t, base, a.BootstrapKey}

	// The skill the lots and the test centre's accreditation name.
	staff.ok("POST", "/v1/skills?skillId=svetsning", map[string]any{"preferredLabel": map[string]string{"sv": "Svetsning", "en": "Welding"}})
	// Two approved needs of the technology council.
	staff.ok("POST", "/v1/councils?councilId=teknik", map[string]any{"displayName": "Kompetensrådet för teknik- och industriföretag", "sector": "SECTOR_TECH_INDUSTRY"})
	for _, n := range []struct{ id, priority string }{{"svetsrobot", "PRIORITY_HIGH"}, {"cnc", "PRIORITY_CRITICAL"}} {
		body := needBody()
		body["title"] = "Behov " + n.id
		staff.ok("POST", "/v1/councils/teknik/needs?needId="+n.id, body)
		staff.ok("POST", "/v1/councils/teknik/needs/"+n.id+":submit", map[string]any{})
		staff.ok("POST", "/v1/councils/teknik/needs/"+n.id+":approve", map[string]any{"priority": n.priority})
	}

	// Providers and a test centre.
	for _, p := range []struct{ id, orgNo, kind string }{
		{"a", "5561000000", "KIND_TRAINING_PROVIDER"}, {"b", "556200-0009", "KIND_TRAINING_PROVIDER"},
		{"c", "556300-0008", "KIND_TRAINING_PROVIDER"}, {"centrum", "556400-0007", "KIND_TEST_CENTRE"},
	} {
		body := map[string]any{"organisationNumber": p.orgNo, "displayName": "Leverantör " + p.id, "kinds": []string{p.kind},
			"municipalities": []string{"1480"}}
		if p.kind == "KIND_TEST_CENTRE" {
			body["accreditations"] = []any{map[string]any{"skillArea": "skills/svetsning", "body": "Svetskommissionen",
				"validUntil": dateOf(time.Now().AddDate(2, 0, 0))}}
		}
		got := staff.ok("POST", "/v1/providers?providerId="+p.id, body)
		if got["name"] != "providers/"+p.id {
			t.Fatalf("provider %v", got)
		}
	}
	if r := staff.do("POST", "/v1/providers?providerId=d", map[string]any{"organisationNumber": "556100-0000",
		"displayName": "Samma nummer", "kinds": []string{"KIND_TRAINING_PROVIDER"}}); r.status != http.StatusConflict {
		t.Fatalf("second provider with one number: %d %s", r.status, r.raw)
	}
	centres := staff.ok("GET", `/v1/providers?filter=kinds:"KIND_TEST_CENTRE"`, nil)
	if ps, _ := centres["providers"].([]any); len(ps) != 1 {
		t.Fatalf("test centres %v", centres)
	}

	// The agreement: two lots, ranked providers, a ceiling of 500 000 SEK.
	now := time.Now()
	agreement := map[string]any{
		"referenceNumber": "GR-2026-017", "title": "Teknik- och industriutbildning",
		"validFrom": dateOf(now.AddDate(0, 0, -1)), "validUntil": dateOf(now.AddDate(3, 0, 0)),
		"ceilingValue": sek(500_000), "awardMethod": "AWARD_METHOD_EITHER", "priceWeight": 60, "qualityWeight": 40,
		"lots": []any{
			map[string]any{"id": "svets", "title": "Svetsning", "skillAreas": []string{"skills/svetsning"},
				"providers": []string{"providers/a", "providers/b", "providers/c"}},
			map[string]any{"id": "validering", "title": "Branschvalidering", "kind": "KIND_ASSESSMENT",
				"skillAreas": []string{"skills/svetsning"}, "providers": []string{"providers/centrum"}},
		},
	}
	// Bad input first: 400 naming the field by its JSON path, nothing written.
	tooLong := map[string]any{}
	for k, v := range agreement {
		tooLong[k] = v
	}
	tooLong["validUntil"] = dateOf(now.AddDate(5, 0, 0))
	collectAudit(t, a, rdb)
	keys, digest := keyspaceDigest(t, rdb)
	r := staff.do("POST", "/v1/frameworkAgreements?frameworkAgreementId=teknik", tooLong)
	if r.status != http.StatusBadRequest || !slices.Contains(violated(r), "frameworkAgreement.validUntil") {
		t.Fatalf("five years: %d %s", r.status, r.raw)
	}
	if k, d := keyspaceDigest(t, rdb); k != keys || d != digest {
		t.Fatal("the refused agreement changed the store")
	}

	staff.ok("POST", "/v1/frameworkAgreements?frameworkAgreementId=teknik", agreement)
	if got := staff.ok("POST", "/v1/frameworkAgreements/teknik:activate", map[string]any{}); got["state"] != "STATE_ACTIVE" {
		t.Fatalf("activate: %v", got)
	}

	// The queue: both approved needs, the critical one first.
	queue := func() []string {
		var out []string
		for _, q := range staff.ok("GET", "/v1/queuedNeeds", nil)["queuedNeeds"].([]any) {
			out = append(out, q.(map[string]any)["need"].(string))
		}
		return out
	}
	eventually(t, "both needs queued", func() bool {
		return strings.Join(queue(), " ") == "councils/teknik/needs/cnc councils/teknik/needs/svetsrobot"
	})

	// By rank: a declines, b accepts with its own key.
	spec := map[string]any{"skills": []string{"skills/svetsning"}, "days": 5, "participants": 12, "municipality": "1480",
		"latestStart": dateOf(now.AddDate(0, 3, 0))}
	callOff := map[string]any{"frameworkAgreement": "frameworkAgreements/teknik", "lot": "svets", "need": "councils/teknik/needs/svetsrobot",
		"value": sek(200_000), "awardMethod": "AWARD_METHOD_RANK_ORDER", "specification": spec}
	bad := map[string]any{}
	for k, v := range callOff {
		bad[k] = v
	}
	bad["specification"] = map[string]any{"days": 11, "participants": 12, "municipality": "1480", "latestStart": spec["latestStart"]}
	bad["value"] = map[string]any{"currencyCode": "EUR", "units": "1000"}
	if r := staff.do("POST", "/v1/callOffs", bad); r.status != http.StatusBadRequest ||
		!slices.Contains(violated(r), "callOff.specification.days") {
		t.Fatalf("days 11: %d %s", r.status, r.raw)
	}
	c := staff.ok("POST", "/v1/callOffs?callOffId=svetsrobot", callOff)
	if c["state"] != "STATE_OFFERED" || c["provider"] != "providers/a" {
		t.Fatalf("call-off %v", c)
	}
	if c = staff.ok("POST", "/v1/callOffs/svetsrobot:decline", map[string]any{"provider": "providers/a", "reason": "Fullbokade"}); c["provider"] != "providers/b" {
		t.Fatalf("after the decline: %v", c)
	}
	keyBody := staff.ok("POST", "/v1/apiKeys", map[string]any{"displayName": "Leverantör b", "role": "ROLE_PROVIDER", "subject": "providers/b"})
	providerB := client{t, base, keyBody["secret"].(string)}
	if r := providerB.do("POST", "/v1/callOffs/svetsrobot:accept", map[string]any{"provider": "providers/a"}); r.status != http.StatusForbidden {
		t.Fatalf("b accepting as a: %d %s", r.status, r.raw)
	}
	if mine := providerB.ok("GET", "/v1/callOffs?provider=providers/-", nil); len(mine["callOffs"].([]any)) != 1 {
		t.Fatalf("b's call-offs: %v", mine)
	}
	c = providerB.ok("POST", "/v1/callOffs/svetsrobot:accept", map[string]any{"provider": "providers/b"})
	if c["state"] != "STATE_AWARDED" || c["provider"] != "providers/b" {
		t.Fatalf("accepted: %v", c)
	}

	// By mini-competition for the other need: every provider bids, then
	// the award (before the deadline, since all have bid).
	mini := map[string]any{"frameworkAgreement": "frameworkAgreements/teknik", "lot": "svets", "need": "councils/teknik/needs/cnc",
		"value": sek(150_000), "awardMethod": "AWARD_METHOD_MINI_COMPETITION", "specification": spec,
		"bidDeadline": now.Add(time.Hour).UTC().Format(time.RFC3339)}
	staff.ok("POST", "/v1/callOffs?callOffId=cnc", mini)
	for _, b := range []struct {
		provider string
		price    int
		quality  int
	}{{"providers/c", 120_000, 60}, {"providers/a", 150_000, 50}, {"providers/b", 150_000, 90}} {
		staff.ok("POST", "/v1/callOffs/cnc/bids", map[string]any{"provider": b.provider, "price": sek(b.price),
			"qualityScore": b.quality, "proposedStart": dateOf(now.AddDate(0, 1, 0))})
	}
	if r := staff.do("POST", "/v1/callOffs/cnc/bids", map[string]any{"provider": "providers/a", "price": sek(1), "proposedStart": dateOf(now.AddDate(0, 1, 0))}); r.status != http.StatusConflict {
		t.Fatalf("second bid: %d %s", r.status, r.raw)
	}
	c = staff.ok("POST", "/v1/callOffs/cnc:award", map[string]any{})
	if c["state"] != "STATE_AWARDED" || c["provider"] != "providers/b" || c["awardValue"].(map[string]any)["units"] != "150000" {
		t.Fatalf("mini-competition: %v", c)
	}
	bids := staff.ok("GET", "/v1/callOffs/cnc/bids", nil)["bids"].([]any)
	if len(bids) != 3 || bids[1].(map[string]any)["winner"] != true || bids[1].(map[string]any)["score"] != 84.0 {
		t.Fatalf("bids %v", bids)
	}

	// Both needs leave the queue with their awards, and move into
	// procurement when councils sees them.
	if q := queue(); len(q) != 0 {
		t.Fatalf("queue after the awards: %v", q)
	}
	for _, n := range []string{"svetsrobot", "cnc"} {
		eventually(t, n+" in procurement", func() bool {
			return staff.ok("GET", "/v1/councils/teknik/needs/"+n, nil)["state"] == "STATE_IN_PROCUREMENT"
		})
	}

	// 350 000 of 500 000 awarded: one more of 150 000 fits, another does not.
	for _, id := range []string{"tredje", "fjarde"} {
		body := needBody()
		staff.ok("POST", "/v1/councils/teknik/needs?needId="+id, body)
		staff.ok("POST", "/v1/councils/teknik/needs/"+id+":submit", map[string]any{})
		staff.ok("POST", "/v1/councils/teknik/needs/"+id+":approve", map[string]any{})
		more := map[string]any{}
		for k, v := range callOff {
			more[k] = v
		}
		more["need"], more["value"] = "councils/teknik/needs/"+id, sek(150_000)
		staff.ok("POST", "/v1/callOffs?callOffId="+id, more)
	}
	staff.ok("POST", "/v1/callOffs/tredje:accept", map[string]any{})
	r = staff.do("POST", "/v1/callOffs/fjarde:accept", map[string]any{})
	if r.status != http.StatusBadRequest || !strings.Contains(r.raw, "frameworkAgreements/teknik has 0,00") {
		t.Fatalf("past the ceiling: %d %s", r.status, r.raw)
	}
	if got := staff.ok("GET", "/v1/frameworkAgreements/teknik", nil); got["awardedValue"].(map[string]any)["units"] != "500000" {
		t.Fatalf("awarded value %v", got["awardedValue"])
	}

	// The OCDS package.
	req, _ := http.NewRequest("GET", base+"/v1/frameworkAgreements/teknik:ocds", nil)
	req.Header.Set("Authorization", "Bearer "+a.BootstrapKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("ocds: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	var pkg struct {
		Version  string           `json:"version"`
		Releases []map[string]any `json:"releases"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil || pkg.Version != "1.1" || len(pkg.Releases) != 5 {
		t.Fatalf("ocds package (%v): %s", err, raw)
	}
	if pkg.Releases[0]["ocid"] != "ocds-kn0000-fa-teknik" {
		t.Fatalf("ocid %v", pkg.Releases[0]["ocid"])
	}
	// A provider may not download it.
	req.Header.Set("Authorization", "Bearer "+providerB.key)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("provider downloading OCDS: %v %v", resp.StatusCode, err)
	}
}

// Over REST, with the real skills service: the skills a provider's
// accreditations and an agreement's lots name are checked with it; an
// unknown or deprecated one is a 400 naming the field by its JSON path
// (the deprecated one's successor in the message), and nothing is written.
func TestProcurementChecksSkillsOverHTTP(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, false)
	staff := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	for _, s := range []struct{ id, label string }{{"svetsning", "Svetsning"}, {"hogvoltssakerhet", "Högvoltssäkerhet"}, {"elsakerhet-fordon", "Elsäkerhet i fordon"}} {
		staff.ok("POST", "/v1/skills?skillId="+s.id, map[string]any{"preferredLabel": map[string]string{"sv": s.label}})
	}
	staff.ok("POST", "/v1/skills/elsakerhet-fordon:deprecate", map[string]any{"replacedBy": "skills/hogvoltssakerhet"})
	staff.ok("POST", "/v1/providers?providerId=a", map[string]any{"organisationNumber": "5561000000", "displayName": "Leverantör A",
		"kinds": []string{"KIND_TRAINING_PROVIDER"}, "municipalities": []string{"1480"}})

	now := time.Now()
	agreement := func(areas ...string) map[string]any {
		return map[string]any{
			"referenceNumber": "GR-2026-017", "title": "Teknik- och industriutbildning",
			"validFrom": dateOf(now), "validUntil": dateOf(now.AddDate(3, 0, 0)),
			"ceilingValue": sek(500_000), "awardMethod": "AWARD_METHOD_RANK_ORDER",
			"lots": []any{map[string]any{"id": "el", "title": "El", "skillAreas": areas, "providers": []string{"providers/a"}}},
		}
	}
	centre := map[string]any{"organisationNumber": "556400-0007", "displayName": "Testcentrum", "kinds": []string{"KIND_TEST_CENTRE"},
		"accreditations": []any{map[string]any{"skillArea": "skills/finns-inte", "body": "Svetskommissionen", "validUntil": dateOf(now.AddDate(2, 0, 0))}}}
	for _, c := range []struct {
		path  string
		body  map[string]any
		field string
		says  string
	}{
		{"/v1/frameworkAgreements?frameworkAgreementId=el", agreement("skills/svetsning", "skills/elsakerhet-fordon"),
			"frameworkAgreement.lots[0].skillAreas[1]", "skills/elsakerhet-fordon is deprecated; use its successor skills/hogvoltssakerhet"},
		{"/v1/frameworkAgreements?frameworkAgreementId=el", agreement("skills/finns-inte"),
			"frameworkAgreement.lots[0].skillAreas[0]", "skills/finns-inte is not a skill"},
		{"/v1/providers?providerId=centrum", centre, "provider.accreditations[0].skillArea", "skills/finns-inte is not a skill"},
	} {
		collectAudit(t, a, rdb)
		keys, digest := keyspaceDigest(t, rdb)
		r := staff.do("POST", c.path, c.body)
		if r.status != http.StatusBadRequest || !slices.Contains(violated(r), c.field) || !strings.Contains(r.raw, c.says) {
			t.Fatalf("%s: %d %s, want 400 naming %s saying %q", c.path, r.status, r.raw, c.field, c.says)
		}
		if k, d := keyspaceDigest(t, rdb); k != keys || d != digest {
			t.Fatalf("%s: the refused request changed the store", c.path)
		}
	}
	if got := staff.ok("POST", "/v1/frameworkAgreements?frameworkAgreementId=el", agreement("skills/svetsning", "skills/hogvoltssakerhet")); got["name"] != "frameworkAgreements/el" {
		t.Fatalf("agreement %v", got)
	}
}
