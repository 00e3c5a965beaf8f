package skills_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// hits are a search's results as "name score".
func hits(t *testing.T, e env, req *skillsv1.SearchSkillsRequest) []string {
	t.Helper()
	resp, err := e.c.SearchSkills(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range resp.GetResults() {
		out = append(out, fmt.Sprintf("%s %.2f", strings.TrimPrefix(r.GetSkill().GetName(), "skills/"), r.GetScore()))
	}
	return out
}

func search(q string) *skillsv1.SearchSkillsRequest {
	return &skillsv1.SearchSkillsRequest{Query: q, PageSize: 100}
}

// On the demo taxonomy: diacritics and case ignored both ways, a whole
// label before labels that start with the query, those before whole words,
// those before words that start with it, and deprecated skills left out or
// last.
func TestSearchTheDemoTaxonomy(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		importDemo(t, e)

		// "svets": labels that start with it, then a label with the word
		// "svets", then labels with words that start with it.
		want := []string{"robotsvetsning 0.75", "svetsning 0.75", "svetskontroll 0.50", "mig-mag-svetsning 0.25", "tig-svetsning 0.25"}
		if got := hits(t, e, search("svets")); !slices.Equal(got, want) {
			t.Fatalf("svets:\n got %v\nwant %v", got, want)
		}
		// The whole label first.
		if got := hits(t, e, search("Svetsning")); len(got) < 3 || got[0] != "svetsning 1.00" || got[1] != "robotsvetsning 0.75" ||
			!slices.Contains(got, "mig-mag-svetsning 0.50") {
			t.Fatalf("Svetsning: %v", got)
		}
		// Without diacritics or with, in any case: the same answer.
		sakerhet := hits(t, e, search("sakerhet"))
		for _, q := range []string{"säkerhet", "SÄKERHET", "Sakerhet", "säkErhet"} {
			if got := hits(t, e, search(q)); !slices.Equal(got, sakerhet) {
				t.Fatalf("%s: %v, but sakerhet: %v", q, got, sakerhet)
			}
		}
		for _, w := range []string{"hogvoltssakerhet 0.75", "robotsakerhet 0.75", "sakerhetsinstruktioner-svenska 0.75",
			"industriell-sakerhet 0.50", "informationssakerhet 0.50", "arbetsmiljo 0.50"} {
			if !slices.Contains(sakerhet, w) {
				t.Fatalf("sakerhet: %v lacks %q", sakerhet, w)
			}
		}
		if i, j := slices.Index(sakerhet, "robotsakerhet 0.75"), slices.Index(sakerhet, "industriell-sakerhet 0.50"); i > j {
			t.Fatalf("a label prefix after a whole word: %v", sakerhet)
		}
		// The deprecated "Elsäkerhet i fordon" (alternative label "Säkerhet
		// vid elarbete i fordon") is left out, or last when asked for.
		if slices.ContainsFunc(sakerhet, func(h string) bool { return strings.HasPrefix(h, "elsakerhet-fordon") }) {
			t.Fatalf("a deprecated skill found: %v", sakerhet)
		}
		with := hits(t, e, &skillsv1.SearchSkillsRequest{Query: "sakerhet", PageSize: 100, IncludeDeprecated: true})
		if len(with) != len(sakerhet)+1 || with[len(with)-1] != "elsakerhet-fordon 0.75" {
			t.Fatalf("with deprecated: %v", with)
		}
		// "ovning" finds "Övningskörning med truck", "ÖVNING" too.
		for _, q := range []string{"ovning", "ÖVNING", "övning"} {
			if got := hits(t, e, search(q)); !slices.Equal(got, []string{"truckkorning 0.75"}) {
				t.Fatalf("%s: %v", q, got)
			}
		}
		// English labels, and several words: every word must match.
		if got := hits(t, e, search("weld")); !slices.Contains(got, "svetsning 0.75") || !slices.Contains(got, "svetskontroll 0.75") ||
			!slices.Contains(got, "mig-mag-svetsning 0.25") {
			t.Fatalf("weld: %v", got)
		}
		if got := hits(t, e, search("industriell sak")); !slices.Equal(got, []string{"industriell-sakerhet 0.75"}) {
			t.Fatalf("industriell sak: %v", got)
		}
		if got := hits(t, e, search("svetsning robot")); !slices.Equal(got, []string{"robotsvetsning 0.50"}) {
			t.Fatalf("svetsning robot: %v", got)
		}
		// "PLC troubleshooting" starts with it too; ties by Swedish label.
		if got := hits(t, e, search("plc")); !slices.Equal(got, []string{"plc-felsokning 0.75", "plc-programmering 0.75"}) {
			t.Fatalf("plc: %v", got)
		}
		if got := hits(t, e, search("xyzzy")); len(got) != 0 {
			t.Fatalf("nonsense: %v", got)
		}

		// Pages: the same results, page by page, and a token bound to its
		// query.
		var paged []string
		token := ""
		for {
			resp, err := e.c.SearchSkills(ctx, &skillsv1.SearchSkillsRequest{Query: "säkerhet", PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.GetResults() {
				paged = append(paged, fmt.Sprintf("%s %.2f", strings.TrimPrefix(r.GetSkill().GetName(), "skills/"), r.GetScore()))
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
			_, err = e.c.SearchSkills(ctx, &skillsv1.SearchSkillsRequest{Query: "svets", PageSize: 2, PageToken: token})
			testkit.WantBadRequest(t, err, "page_token")
		}
		if !slices.Equal(paged, sakerhet) {
			t.Fatalf("paged %v, at once %v", paged, sakerhet)
		}
		// Default page size.
		if resp, err := e.c.SearchSkills(ctx, &skillsv1.SearchSkillsRequest{Query: "s"}); err != nil || len(resp.GetResults()) != 10 || resp.GetNextPageToken() == "" {
			t.Fatalf("default page: %d results, %v", len(resp.GetResults()), err)
		}

		// The index follows renames at once.
		if _, err := e.c.UpdateSkill(ctx, &skillsv1.UpdateSkillRequest{
			Skill:      &skillsv1.Skill{Name: "skills/tig-svetsning", PreferredLabel: map[string]string{"sv": "Volframsvetsning", "en": "Tungsten welding"}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"preferred_label"}}}); err != nil {
			t.Fatal(err)
		}
		if got := hits(t, e, search("svets")); slices.Contains(got, "tig-svetsning 0.25") {
			t.Fatalf("renamed skill still found by its old label: %v", got)
		}
		if got := hits(t, e, search("volfram")); !slices.Equal(got, []string{"tig-svetsning 0.75"}) {
			t.Fatalf("renamed skill not found by its new label: %v", got)
		}

		for _, q := range []string{"", "  -- ", strings.Repeat("a ", 9)} {
			_, err := e.c.SearchSkills(ctx, search(q))
			testkit.WantBadRequest(t, err, "query")
		}
		_, err := e.c.SearchSkills(ctx, &skillsv1.SearchSkillsRequest{Query: "svets", PageSize: 101})
		testkit.WantBadRequest(t, err, "page_size")
	})
}
