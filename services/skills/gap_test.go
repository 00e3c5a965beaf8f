package skills_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc/codes"
)

// rowsOf is an analysis as "skill required/headcount assessed qualified short gap".
func rowsOf(a *skillsv1.GapAnalysis) []string {
	var out []string
	for _, r := range a.GetRows() {
		out = append(out, fmt.Sprintf("%s %d/%d %d %d %d %.3f", strings.TrimPrefix(r.GetSkill(), "skills/"), r.GetRequiredLevel(), r.GetHeadcount(),
			r.GetAssessed(), r.GetQualified(), r.GetHeadcountShort(), r.GetAverageGap()))
	}
	return out
}

// Three people, two skills, worked out by hand:
//
//	svetsning: level 3 for 5 people. Anna 4, Bo 2, Cecilia 1: assessed 3,
//	qualified 1 (Anna), short 5 − 1 = 4, gap (0 + 1 + 2) / 3 = 1.
//	plc: level 2 for 2 people. Anna 1, Bo 2, Cecilia not assessed:
//	assessed 2, qualified 1 (Bo), short 2 − 1 = 1, gap (1 + 0) / 2 = 0.5.
//
// Then Cecilia is validated again (svetsning 3): her latest counts.
func TestGapAnalysisByHand(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		baseSkills(t, e)
		m := mustMapping(t, e, "volvo", mapping("companies/volvo-torslanda", req("plc", 2, 2), req("svetsning", 3, 5)))
		mustValidation(t, e, "anna", validation(m.GetName(), "participants/anna", feb, result("svetsning", 4), result("plc", 1)))
		mustValidation(t, e, "bo", validation(m.GetName(), "participants/bo", feb, result("svetsning", 2), result("plc", 2)))
		mustValidation(t, e, "cecilia", validation(m.GetName(), "participants/cecilia", feb, result("svetsning", 1), result("truck", 3)))

		a, err := e.c.AnalyzeGap(ctx, &skillsv1.AnalyzeGapRequest{Name: m.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"svetsning 3/5 3 1 4 1.000", "plc 2/2 2 1 1 0.500"}
		if got := rowsOf(a); !slices.Equal(got, want) || a.GetTotalHeadcountShort() != 5 || a.GetPeopleAssessed() != 3 {
			t.Fatalf("rows %v (total %d, %d people), want %v", got, a.GetTotalHeadcountShort(), a.GetPeopleAssessed(), want)
		}

		// Cecilia again, later: svetsning 3. Counting all: her latest.
		mustValidation(t, e, "cecilia-2", validation(m.GetName(), "participants/cecilia", &date.Date{Year: 2026, Month: 3, Day: 1}, result("svetsning", 3)))
		a, err = e.c.AnalyzeGap(ctx, &skillsv1.AnalyzeGapRequest{Name: m.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		// svetsning: Anna 4, Bo 2, Cecilia 3 → qualified 2, short 3, gap 1/3.
		// plc: Anna 1, Bo 2 (Cecilia's latest has no plc) → as before.
		want = []string{"svetsning 3/5 3 2 3 0.333", "plc 2/2 2 1 1 0.500"}
		if got := rowsOf(a); !slices.Equal(got, want) || a.GetTotalHeadcountShort() != 4 || a.GetPeopleAssessed() != 3 ||
			!slices.Contains(a.GetValidations(), "validations/cecilia-2") || slices.Contains(a.GetValidations(), "validations/cecilia") {
			t.Fatalf("rows %v (total %d) from %v, want %v", got, a.GetTotalHeadcountShort(), a.GetValidations(), want)
		}
		if math.Abs(a.GetRows()[0].GetAverageGap()-1.0/3) > 1e-12 {
			t.Fatalf("average gap %v", a.GetRows()[0].GetAverageGap())
		}
		// Naming validations: only those count.
		a, err = e.c.AnalyzeGap(ctx, &skillsv1.AnalyzeGapRequest{Name: m.GetName(), Validations: []string{"validations/anna", "validations/bo"}})
		if err != nil {
			t.Fatal(err)
		}
		// svetsning: Anna 4, Bo 2 → qualified 1, short 4, gap 0.5; plc: as before.
		want = []string{"svetsning 3/5 2 1 4 0.500", "plc 2/2 2 1 1 0.500"}
		if got := rowsOf(a); !slices.Equal(got, want) {
			t.Fatalf("named: %v, want %v", got, want)
		}
		_, err = e.c.AnalyzeGap(ctx, &skillsv1.AnalyzeGapRequest{Name: m.GetName(), Validations: []string{"validations/anna", "validations/nej"}})
		testkit.WantBadRequest(t, err, "validations[1]")
		_, err = e.c.AnalyzeGap(ctx, &skillsv1.AnalyzeGapRequest{Name: "mappings/nej"})
		wantCode(t, err, codes.NotFound)

		// A proposed need from it: the skills short, the largest shortfall,
		// the company, a rationale naming the gaps, and the councils
		// service's own rules satisfied.
		n, err := e.c.ProposeNeed(ctx, &skillsv1.ProposeNeedRequest{Name: m.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		if n.GetTitle() != "Kompetensbehov: Svetsning, PLC-programmering" || !slices.Equal(n.GetSkills(), []string{"skills/svetsning", "skills/plc"}) ||
			n.GetHeadcount() != 3 || n.GetRequestedBy() != "companies/volvo-torslanda" || !slices.Equal(n.GetMunicipalities(), []string{"1480"}) ||
			!strings.Contains(n.GetDescription(), "hör till councils/fordon") ||
			!slices.Equal(n.GetTargetGroups(), []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_EMPLOYED_AT_RISK}) ||
			n.GetName() != "" || n.GetState() != 0 {
			t.Fatalf("proposed need %v", n)
		}
		for _, w := range []string{"Svetsning: nivå 3 krävs för 5 personer; 2 av 3 bedömda når nivån; 3 saknas", "PLC-programmering: nivå 2 krävs för 2 personer; 1 av 2"} {
			if !strings.Contains(n.GetRationale(), w) {
				t.Fatalf("rationale lacks %q:\n%s", w, n.GetRationale())
			}
		}
		v, err := protovalidate.New()
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(&councilsv1.CreateNeedRequest{Parent: "councils/fordon", Need: n}); err != nil {
			t.Fatalf("the councils service's rules refuse it: %v", err)
		}
		n, err = e.c.ProposeNeed(ctx, &skillsv1.ProposeNeedRequest{Name: m.GetName(),
			TargetGroups: []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_NOTIFIED}})
		if err != nil || !slices.Equal(n.GetTargetGroups(), []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_NOTIFIED}) {
			t.Fatalf("target groups: %v %v", n, err)
		}

		// A deprecated requirement: assessments of its successor count,
		// and the need names the successor.
		mustSkill(t, e, "plc-61131", skill("PLC enligt IEC 61131-3", ""))
		if _, err := e.c.DeprecateSkill(ctx, &skillsv1.DeprecateSkillRequest{Name: "skills/plc", ReplacedBy: "skills/plc-61131"}); err != nil {
			t.Fatal(err)
		}
		mustValidation(t, e, "david", validation(m.GetName(), "participants/david", feb, result("plc-61131", 5), result("svetsning", 5)))
		a, err = e.c.AnalyzeGap(ctx, &skillsv1.AnalyzeGapRequest{Name: m.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		// plc: Anna 1, Bo 2, David 5 → qualified 2, short 0, gap 1/3.
		// svetsning: Anna 4, Bo 2, Cecilia 3, David 5 → qualified 3, short 2, gap 0.25.
		want = []string{"svetsning 3/5 4 3 2 0.250", "plc 2/2 3 2 0 0.333"}
		if got := rowsOf(a); !slices.Equal(got, want) || a.GetRows()[1].GetReplacedBy() != "skills/plc-61131" {
			t.Fatalf("with a successor: %v, want %v", got, want)
		}
		n, err = e.c.ProposeNeed(ctx, &skillsv1.ProposeNeedRequest{Name: m.GetName()})
		if err != nil || !slices.Equal(n.GetSkills(), []string{"skills/svetsning"}) || n.GetHeadcount() != 2 {
			t.Fatalf("need %v %v", n, err)
		}

		// No shortfall, nothing to propose.
		full := mustMapping(t, e, "liten", mapping("councils/fordon", req("svetsning", 2, 1)))
		mustValidation(t, e, "erik", validation(full.GetName(), "participants/erik", feb, result("svetsning", 2)))
		_, err = e.c.ProposeNeed(ctx, &skillsv1.ProposeNeedRequest{Name: full.GetName()})
		wantCode(t, err, codes.FailedPrecondition)
		// A sector's need names no company.
		full2 := mustMapping(t, e, "sektor", mapping("councils/fordon", req("svetsning", 5, 40)))
		n, err = e.c.ProposeNeed(ctx, &skillsv1.ProposeNeedRequest{Name: full2.GetName()})
		if err != nil || n.GetRequestedBy() != "" || n.GetHeadcount() != 40 || len(n.GetMunicipalities()) != 0 || !strings.Contains(n.GetRationale(), "0 bedömda personer") {
			t.Fatalf("sector need %v %v", n, err)
		}
	})
}
