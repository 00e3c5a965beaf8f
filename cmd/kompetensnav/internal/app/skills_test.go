package app_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
)

func names(list []any) []string {
	var out []string
	for _, x := range list {
		m, _ := x.(map[string]any)
		if s, ok := m["skill"].(map[string]any); ok {
			m = s
		}
		out = append(out, strings.TrimPrefix(m["name"].(string), "skills/"))
	}
	return out
}

func num(m map[string]any, k string) float64 { f, _ := m[k].(float64); return f }

// The "done when", through the gateway: import the demo taxonomy,
// search "svets" and "sakerhet", map a company's required skills, record
// three validations, get the gap with the right numbers, turn it into a
// proposed need the councils service accepts as it is, issue a
// certificate and verify its credential offline with the published key.
func TestSkillsDoneWhenOverHTTP(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, false)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}

	file, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "services", "skills", "demotaxonomy", "taxonomy.json"))
	if err != nil {
		t.Fatal(err)
	}
	imp := c.ok("POST", "/v1/skills:import", string(file))
	if num(imp, "created") < 60 || num(imp, "version") != 1 {
		t.Fatalf("import %v", imp)
	}
	if again := c.ok("POST", "/v1/skills:import", string(file)); num(again, "unchanged") != num(imp, "created") || num(again, "version") != 1 {
		t.Fatalf("import again %v", again)
	}

	svets := names(c.ok("GET", "/v1/skills:search?query=svets&pageSize=10", nil)["results"].([]any))
	if len(svets) < 4 || !slices.Contains(svets[:2], "svetsning") || !slices.Contains(svets, "mig-mag-svetsning") {
		t.Fatalf("svets: %v", svets)
	}
	sakerhet := names(c.ok("GET", "/v1/skills:search?query=sakerhet", nil)["results"].([]any))
	if !slices.Contains(sakerhet, "industriell-sakerhet") || !slices.Contains(sakerhet, "hogvoltssakerhet") {
		t.Fatalf("sakerhet: %v", sakerhet)
	}
	if got := names(c.ok("GET", "/v1/skills:search?query="+url.QueryEscape("SÄKERHET"), nil)["results"].([]any)); !slices.Equal(got, sakerhet) {
		t.Fatalf("SÄKERHET %v, sakerhet %v", got, sakerhet)
	}

	// A company's required skills: the companies service is asked whether
	// it exists.
	r := c.do("POST", "/v1/mappings", map[string]any{"subject": "companies/volvo-torslanda", "displayName": "x",
		"requirements": []any{map[string]any{"skill": "skills/mig-mag-svetsning", "level": 3, "headcount": 5}}})
	if r.status != http.StatusBadRequest || !slices.Contains(violated(r), "mapping.subject") {
		t.Fatalf("a mapping of a company that does not exist: %d %s", r.status, r.raw)
	}
	c.ok("POST", "/v1/councils?councilId=fordon", council)
	c.ok("POST", "/v1/companies?companyId=volvo-torslanda", companyBody("5560125790"))
	c.ok("POST", "/v1/mappings?mappingId=volvo-svets", map[string]any{
		"subject": "companies/volvo-torslanda", "displayName": "Svetsning och robotar i karossfabriken",
		"requirements": []any{
			map[string]any{"skill": "skills/mig-mag-svetsning", "level": 3, "headcount": 5},
			map[string]any{"skill": "skills/robotprogrammering", "level": 2, "headcount": 2},
		},
	})
	// Three people validated (by hand: MIG/MAG 4, 2, 1 → 1 qualified, 4
	// short, gap 1; robots 1, 2, – → 1 qualified, 1 short, gap 0.5).
	for id, levels := range map[string][2]int{"anna": {4, 1}, "bo": {2, 2}, "cecilia": {1, -1}} {
		results := []any{map[string]any{"skill": "skills/mig-mag-svetsning", "level": levels[0]}}
		if levels[1] >= 0 {
			results = append(results, map[string]any{"skill": "skills/robotprogrammering", "level": levels[1]})
		}
		c.ok("POST", "/v1/validations?validationId=volvo-"+id, map[string]any{
			"mapping": "mappings/volvo-svets", "personReference": "participants/" + id, "assessor": "Svetskommissionens testcenter",
			"assessedOn": map[string]any{"year": 2026, "month": 2, "day": 20}, "results": results,
		})
	}
	gap := c.ok("POST", "/v1/mappings/volvo-svets:analyzeGap", map[string]any{})
	rows, _ := gap["rows"].([]any)
	if len(rows) != 2 || num(gap, "totalHeadcountShort") != 5 || num(gap, "peopleAssessed") != 3 {
		t.Fatalf("gap %v", gap)
	}
	r0, r1 := rows[0].(map[string]any), rows[1].(map[string]any)
	if r0["skill"] != "skills/mig-mag-svetsning" || num(r0, "assessed") != 3 || num(r0, "qualified") != 1 || num(r0, "headcountShort") != 4 || num(r0, "averageGap") != 1 ||
		r1["skill"] != "skills/robotprogrammering" || num(r1, "assessed") != 2 || num(r1, "qualified") != 1 || num(r1, "headcountShort") != 1 || num(r1, "averageGap") != 0.5 {
		t.Fatalf("rows %v", rows)
	}

	// The proposed need, with the company's municipality, submitted to the
	// company's council as it is.
	r = c.do("POST", "/v1/mappings/volvo-svets:proposeNeed", map[string]any{})
	if r.status != http.StatusOK {
		t.Fatalf("proposeNeed %d %s", r.status, r.raw)
	}
	n := c.ok("POST", "/v1/councils/fordon/needs?needId=volvo-svets", r.raw)
	if ms, _ := n["municipalities"].([]any); len(ms) != 1 || ms[0] != "1480" || !strings.Contains(n["description"].(string), "councils/fordon") {
		t.Fatalf("need %v", n)
	}
	if n["state"] != "STATE_DRAFT" || num(n, "headcount") != 4 || n["requestedBy"] != "companies/volvo-torslanda" ||
		!strings.HasPrefix(n["title"].(string), "Kompetensbehov: MIG/MAG-svetsning") || len(n["skills"].([]any)) != 2 {
		t.Fatalf("need %v", n)
	}
	for k, v := range r.body {
		if got, _ := json.Marshal(n[k]); string(got) != mustJSON(v) {
			t.Errorf("the council stored %s as %s, proposed %s", k, got, mustJSON(v))
		}
	}
	c.ok("POST", "/v1/councils/fordon/needs/volvo-svets:submit", map[string]any{})

	// A certificate, its credential, verified offline with the key set.
	c.ok("POST", "/v1/certificates?certificateId=volvo-anna", map[string]any{
		"holderReference": "participants/anna", "evidence": "validations/volvo-anna",
		"skills": []any{map[string]any{"skill": "skills/mig-mag-svetsning", "level": 4}},
	})
	cred := c.ok("GET", "/v1/certificates/volvo-anna:credential", nil)
	jwt, _ := cred["jwt"].(string)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(c.do("GET", "/v1/certificates:jwks", nil).raw), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks: %v", err)
	}
	jws, err := jose.ParseSigned(jwt, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if jws.Signatures[0].Header.KeyID != set.Keys[0].KeyID || jws.Signatures[0].Header.KeyID != a.IssuerKeyID {
		t.Fatalf("kid %q, key set %q", jws.Signatures[0].Header.KeyID, set.Keys[0].KeyID)
	}
	payload, err := jws.Verify(set.Keys[0].Key)
	if err != nil {
		t.Fatalf("offline verification: %v", err)
	}
	parts := strings.Split(jwt, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !ed25519.Verify(set.Keys[0].Key.(ed25519.PublicKey), []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatal("crypto/ed25519 does not verify it")
	}
	var vc map[string]any
	if err := json.Unmarshal(payload, &vc); err != nil || vc["id"] != "http://"+a.HTTPAddr+"/v1/certificates/volvo-anna" ||
		!strings.Contains(string(payload), `"OpenBadgeCredential"`) || strings.Contains(string(payload), "participants/anna") {
		t.Fatalf("credential %s", payload)
	}
	if v := c.ok("POST", "/v1/certificates:verify", map[string]any{"jwt": jwt}); v["valid"] != true || v["certificate"] != "certificates/volvo-anna" {
		t.Fatalf("verify %v", v)
	}
	c.ok("POST", "/v1/certificates/volvo-anna:revoke", map[string]any{"reason": "Fel underlag"})
	if v := c.ok("POST", "/v1/certificates:verify", map[string]any{"jwt": jwt}); v["valid"] == true || !strings.Contains(v["reason"].(string), "revoked") {
		t.Fatalf("verify after revocation %v", v)
	}

	// Bad input over REST: 400 naming the field by its JSON path, nothing
	// written.
	collectAudit(t, a, rdb)
	keys, digest := keyspaceDigest(t, rdb)
	bad := strings.Replace(string(file), `"sv": "Robotprogrammering"`, `"en_GB": "Robot programming"`, 1)
	if bad == string(file) {
		t.Fatal("nothing replaced")
	}
	for _, b := range []struct {
		method, path string
		body         any
		field        string
	}{
		{"POST", "/v1/skills:import", bad, "skills[10].preferredLabel"},
		{"POST", "/v1/validations", map[string]any{"mapping": "mappings/volvo-svets", "personReference": "19640823-3234", "assessor": "x",
			"assessedOn": map[string]any{"year": 2026, "month": 2, "day": 20}, "results": []any{map[string]any{"skill": "skills/mig-mag-svetsning", "level": 2}}},
			"validation.personReference"},
		{"POST", "/v1/mappings", map[string]any{"subject": "companies/volvo", "displayName": "x",
			"requirements": []any{map[string]any{"skill": "skills/mig-mag-svetsning", "level": 6, "headcount": 1}}}, "mapping.requirements[0].level"},
		{"POST", "/v1/skills", map[string]any{"preferredLabel": map[string]any{"sv": "x"}, "escoUri": "http://data.europa.eu/esco/skill/welding"}, "skill.escoUri"},
		{"PATCH", "/v1/skills/svetsning", map[string]any{"broader": "skills/mig-mag-svetsning"}, "skill.broader"},
		{"GET", "/v1/skills?version=99", nil, "version"},
	} {
		r := c.do(b.method, b.path, b.body)
		if r.status != http.StatusBadRequest || !slices.Contains(violated(r), b.field) {
			t.Errorf("%s %s: %d %v, want 400 naming %s: %s", b.method, b.path, r.status, violated(r), b.field, r.raw)
		}
		if strings.Contains(r.raw, "3234") {
			t.Errorf("the answer repeats the personnummer: %s", r.raw)
		}
	}
	collectAudit(t, a, rdb)
	if k, d := keyspaceDigest(t, rdb); k != keys || d != digest {
		t.Fatalf("refused requests changed the store (%d → %d keys)", keys, k)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// The demo loads the skills demo: the taxonomy, a mapping of the vehicle
// council with three validations, and a certificate.
func TestDemoHasSkills(t *testing.T) {
	a := start(t, testkit.Redis(t), true)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	if l := c.ok("GET", "/v1/skills?pageSize=1000", nil); len(l["skills"].([]any)) < 60 || num(l, "version") != 1 {
		t.Fatalf("demo taxonomy: %d skills, version %v", len(l["skills"].([]any)), l["version"])
	}
	if g := c.ok("POST", "/v1/mappings/fordon-elektrifiering:analyzeGap", map[string]any{}); num(g, "peopleAssessed") != 3 {
		t.Fatalf("demo gap %v", g)
	}
	if v := c.ok("POST", "/v1/certificates:verify", map[string]any{"jwt": c.ok("GET", "/v1/certificates/fordon-p1001:credential", nil)["jwt"]}); v["valid"] != true {
		t.Fatalf("demo certificate %v", v)
	}
}
