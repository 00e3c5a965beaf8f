package procurement_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/procurement"
	"google.golang.org/grpc/codes"
)

// The required fields of OCDS 1.1's release package schema and release
// schema, and the shapes of the parts this export fills in.
var (
	packageRequired = []string{"uri", "publisher", "publishedDate", "releases", "version"}
	releaseRequired = []string{"ocid", "id", "date", "tag", "initiationType"}
	releaseTags     = []string{"planning", "planningUpdate", "tender", "tenderAmendment", "tenderUpdate", "tenderCancellation",
		"award", "awardUpdate", "awardCancellation", "contract", "contractUpdate", "contractAmendment", "implementation",
		"implementationUpdate", "contractTermination", "compiled"}
)

func TestOCDSExport(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		activeAgreement(t, e, "teknik", either, 2_500_000)
		byRank := callOffReq("rank", "frameworkAgreements/teknik", "svets", approvedNeed(e), 150_000)
		byRank.CallOff.AwardMethod, byRank.CallOff.Project = rank, "projects/esf-2020-00312"
		r := mustCallOff(t, e, byRank)
		if _, err := accept(e, r.GetName(), ""); err != nil {
			t.Fatal(err)
		}
		competition := callOffReq("mini", "frameworkAgreements/teknik", "svets", approvedNeed(e), 90_000)
		competition.CallOff.AwardMethod, competition.CallOff.BidDeadline = mini, ts(start.Add(time.Hour))
		mustCallOff(t, e, competition)

		body, err := e.c.ExportFrameworkAgreementOcds(ctx, &procurementv1.ExportFrameworkAgreementOcdsRequest{Name: "frameworkAgreements/teknik"})
		if err != nil {
			t.Fatal(err)
		}
		if body.GetContentType() != "application/json" {
			t.Fatalf("content type %q", body.GetContentType())
		}
		var pkg map[string]any
		if err := json.Unmarshal(body.GetData(), &pkg); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, body.GetData())
		}
		for _, f := range packageRequired {
			if pkg[f] == nil || pkg[f] == "" {
				t.Fatalf("package lacks %s", f)
			}
		}
		if pkg["version"] != "1.1" || pkg["publisher"].(map[string]any)["name"] == "" {
			t.Fatalf("package %v", pkg)
		}
		if _, err := time.Parse(time.RFC3339, pkg["publishedDate"].(string)); err != nil {
			t.Fatalf("publishedDate: %v", err)
		}
		releases := pkg["releases"].([]any)
		if len(releases) != 3 {
			t.Fatalf("%d releases, want the agreement and two call-offs", len(releases))
		}
		ocids := map[string]bool{}
		for _, x := range releases {
			rel := x.(map[string]any)
			for _, f := range releaseRequired {
				if rel[f] == nil || rel[f] == "" {
					t.Fatalf("release lacks %s: %v", f, rel)
				}
			}
			if !strings.HasPrefix(rel["ocid"].(string), procurement.DefaultOCDSPrefix+"-") {
				t.Fatalf("ocid %v", rel["ocid"])
			}
			ocids[rel["ocid"].(string)] = true
			for _, tag := range rel["tag"].([]any) {
				if !contains(releaseTags, tag.(string)) {
					t.Fatalf("tag %v is not in the release tag codelist", tag)
				}
			}
			if _, err := time.Parse(time.RFC3339, rel["date"].(string)); err != nil {
				t.Fatalf("date: %v", err)
			}
		}
		if len(ocids) != 3 {
			t.Fatalf("ocids are not distinct: %v", ocids)
		}

		// The framework: its lots, the technique, an award per lot to the
		// ranked suppliers in rank order, identified by organisation number.
		fa := releases[0].(map[string]any)
		tender := fa["tender"].(map[string]any)
		tech := tender["techniques"].(map[string]any)
		if tech["hasFrameworkAgreement"] != true || tech["frameworkAgreement"].(map[string]any)["method"] != "withAndWithoutReopeningCompetition" {
			t.Fatalf("techniques %v", tech)
		}
		if lots := tender["lots"].([]any); len(lots) != 2 || lots[0].(map[string]any)["id"] != "svets" {
			t.Fatalf("lots %v", lots)
		}
		if v := tender["value"].(map[string]any); v["amount"] != 2500000.0 || v["currency"] != "SEK" {
			t.Fatalf("ceiling %v", v)
		}
		awards := fa["awards"].([]any)
		suppliers := awards[0].(map[string]any)["suppliers"].([]any)
		if len(awards) != 2 || len(suppliers) != 3 || suppliers[0].(map[string]any)["id"] != "SE-BLV-5560125790" ||
			suppliers[0].(map[string]any)["name"] != "Utbildare a" {
			t.Fatalf("framework awards %v", awards)
		}
		parties := fa["parties"].([]any)
		if len(parties) != 5 { // the buyer and four suppliers
			t.Fatalf("parties %v", parties)
		}

		// The awarded call-off: related to the framework, its award and
		// contract in SEK, to the provider that accepted.
		co := releases[1].(map[string]any)
		rel := co["relatedProcesses"].([]any)[0].(map[string]any)
		if rel["relationship"].([]any)[0] != "framework" || rel["scheme"] != "ocid" || rel["identifier"] != fa["ocid"] {
			t.Fatalf("related process %v", rel)
		}
		award := co["awards"].([]any)[0].(map[string]any)
		contract := co["contracts"].([]any)[0].(map[string]any)
		if award["value"].(map[string]any)["amount"] != 150000.0 || award["value"].(map[string]any)["currency"] != "SEK" ||
			award["suppliers"].([]any)[0].(map[string]any)["id"] != "SE-BLV-5560125790" {
			t.Fatalf("call-off award %v", award)
		}
		if contract["awardID"] != award["id"] || contract["value"].(map[string]any)["amount"] != 150000.0 {
			t.Fatalf("call-off contract %v", contract)
		}
		// The open mini-competition is a tender so far.
		open := releases[2].(map[string]any)
		if open["tender"].(map[string]any)["status"] != "active" || open["awards"] != nil {
			t.Fatalf("open call-off %v", open)
		}

		_, err = e.c.ExportFrameworkAgreementOcds(ctx, &procurementv1.ExportFrameworkAgreementOcdsRequest{Name: "frameworkAgreements/okant"})
		wantCode(t, err, codes.NotFound)
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
