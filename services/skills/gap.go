package skills

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxAnalysed bounds the validations one analysis reads (a mapping of a
// whole sector might have a few thousand).
const maxAnalysed = 10000

// gap is an analysis with what ProposeNeed needs besides the rows.
type gap struct {
	mapping    *skillsv1.CompetenceMapping
	analysis   *skillsv1.GapAnalysis
	successors map[string]string
}

// analyse compares the mapping's requirements with the latest validation
// of each person among validations (or all of the mapping's).
func (s *Service) analyse(ctx context.Context, name string, validations []string) (*gap, error) {
	id, err := parseMappingName("name", name)
	if err != nil {
		return nil, err
	}
	m, err := s.loadMapping(ctx, id)
	if err != nil {
		return nil, err
	}
	vals, err := s.validationsFor(ctx, id, validations)
	if err != nil {
		return nil, err
	}
	latest := latestPerPerson(vals)

	var names []string
	for _, r := range m.GetRequirements() {
		names = append(names, r.GetSkill())
	}
	for _, v := range latest {
		for _, r := range v.GetResults() {
			names = append(names, r.GetSkill())
		}
	}
	succ, err := s.successors(ctx, names)
	if err != nil {
		return nil, err
	}
	// A deprecated skill and its successor are one skill: what was
	// assessed under either counts for a requirement of either.
	resolve := func(n string) string {
		if r, ok := succ[n]; ok {
			return r
		}
		return n
	}
	held := make([]map[string]int32, len(latest))
	for i, v := range latest {
		held[i] = map[string]int32{}
		for _, r := range v.GetResults() {
			k := resolve(r.GetSkill())
			if cur, ok := held[i][k]; !ok || r.GetLevel() > cur {
				held[i][k] = r.GetLevel()
			}
		}
	}

	a := &skillsv1.GapAnalysis{Mapping: m.GetName(), PeopleAssessed: int32(len(latest))}
	for _, v := range latest {
		a.Validations = append(a.Validations, v.GetName())
	}
	for _, req := range m.GetRequirements() {
		row := &skillsv1.GapRow{Skill: req.GetSkill(), ReplacedBy: succ[req.GetSkill()],
			RequiredLevel: req.GetLevel(), Headcount: req.GetHeadcount()}
		k := resolve(req.GetSkill())
		gapSum := 0
		for _, h := range held {
			level, ok := h[k]
			if !ok {
				continue
			}
			row.Assessed++
			if level >= req.GetLevel() {
				row.Qualified++
			} else {
				gapSum += int(req.GetLevel() - level)
			}
		}
		row.HeadcountShort = max(0, row.GetHeadcount()-row.GetQualified())
		if row.Assessed > 0 {
			row.AverageGap = float64(gapSum) / float64(row.Assessed)
		}
		a.TotalHeadcountShort += row.HeadcountShort
		a.Rows = append(a.Rows, row)
	}
	slices.SortStableFunc(a.Rows, func(x, y *skillsv1.GapRow) int {
		if c := cmp.Compare(y.GetHeadcountShort(), x.GetHeadcountShort()); c != 0 {
			return c
		}
		return cmp.Compare(y.GetAverageGap(), x.GetAverageGap())
	})
	return &gap{mapping: m, analysis: a, successors: succ}, nil
}

// validationsFor reads the named validations (each must exist), or with
// none named every validation recorded against the mapping.
func (s *Service) validationsFor(ctx context.Context, mappingID string, names []string) ([]*skillsv1.IndustryValidation, error) {
	if len(names) == 0 {
		ids, err := s.rdb.SRandMemberN(ctx, mappingValidationsKey(mappingID), maxAnalysed+1).Result()
		if err != nil {
			return nil, s.st.Err(ctx, err)
		}
		if len(ids) > maxAnalysed {
			return nil, apierr.FailedPrecondition("%s has more than %d validations; name the ones to analyse in validations", mappingName(mappingID), maxAnalysed)
		}
		for _, id := range ids {
			names = append(names, validationName(id))
		}
		slices.Sort(names)
		return loadValidations(ctx, s, names)
	}
	vals, err := loadValidations(ctx, s, names)
	if err != nil {
		return nil, err
	}
	found := map[string]bool{}
	for _, v := range vals {
		found[v.GetName()] = true
	}
	var v apierr.Violations
	for i, n := range names {
		if !found[n] {
			v.Add(fmt.Sprintf("validations[%d]", i), "%s does not exist", n)
		}
	}
	return vals, v.Err()
}

func loadValidations(ctx context.Context, s *Service, names []string) ([]*skillsv1.IndustryValidation, error) {
	return store.Load(ctx, s.st, keysOf(names, validationNameRE, validationKey), newValidation)
}

// latestPerPerson keeps each person's latest validation (by assessment
// date, then by when it was recorded), in the order of first appearance.
func latestPerPerson(vals []*skillsv1.IndustryValidation) []*skillsv1.IndustryValidation {
	at := map[string]int{}
	var out []*skillsv1.IndustryValidation
	for _, v := range vals {
		i, seen := at[v.GetPersonReference()]
		if !seen {
			at[v.GetPersonReference()] = len(out)
			out = append(out, v)
			continue
		}
		if later(v, out[i]) {
			out[i] = v
		}
	}
	return out
}

func later(a, b *skillsv1.IndustryValidation) bool {
	if da, db := dateNum(a.GetAssessedOn()), dateNum(b.GetAssessedOn()); da != db {
		return da > db
	}
	if c := a.GetCreateTime().AsTime().Compare(b.GetCreateTime().AsTime()); c != 0 {
		return c > 0
	}
	return a.GetName() > b.GetName()
}

// AnalyzeGap implements skillsv1.SkillsServiceServer.
func (s *Service) AnalyzeGap(ctx context.Context, req *skillsv1.AnalyzeGapRequest) (*skillsv1.GapAnalysis, error) {
	g, err := s.analyse(ctx, req.GetName(), req.GetValidations())
	if err != nil {
		return nil, err
	}
	return g.analysis, nil
}

// Limits of the councils service's CompetenceNeed that a proposal keeps to,
// so that it is accepted as it is.
const (
	needTitleMax     = 200
	needSkillsMax    = 100
	needHeadcountMax = 10000
	needRationaleMax = 10000
)

// ProposeNeed implements skillsv1.SkillsServiceServer.
func (s *Service) ProposeNeed(ctx context.Context, req *skillsv1.ProposeNeedRequest) (*councilsv1.CompetenceNeed, error) {
	g, err := s.analyse(ctx, req.GetName(), req.GetValidations())
	if err != nil {
		return nil, err
	}
	var short []*skillsv1.GapRow
	for _, r := range g.analysis.GetRows() {
		if r.GetHeadcountShort() > 0 {
			short = append(short, r)
		}
	}
	if len(short) == 0 {
		return nil, wrongState(g.mapping.GetName(), "NO_GAP",
			fmt.Sprintf("%s has no shortfall: every required skill has enough people at the required level", g.mapping.GetName()))
	}
	// The need names skills in use: a deprecated one by its successor.
	var skillNames []string
	seen := map[string]bool{}
	headcount := int32(0)
	for _, r := range short {
		n := r.GetSkill()
		if r.GetReplacedBy() != "" {
			n = r.GetReplacedBy()
		}
		if !seen[n] && len(skillNames) < needSkillsMax {
			seen[n] = true
			skillNames = append(skillNames, n)
		}
		headcount = max(headcount, r.GetHeadcountShort())
	}
	skills, err := s.loadSkills(ctx, skillNames)
	if err != nil {
		return nil, err
	}
	label := func(n string) string {
		if sk := skills[n]; sk != nil && sk.GetPreferredLabel()["sv"] != "" {
			return sk.GetPreferredLabel()["sv"]
		}
		return n
	}
	labels := make([]string, len(skillNames))
	for i, n := range skillNames {
		labels[i] = label(n)
	}

	var rationale strings.Builder
	fmt.Fprintf(&rationale, "Gapanalys av kompetenskartläggningen %s (%s), %d bedömda personer:\n",
		g.mapping.GetName(), g.mapping.GetDisplayName(), g.analysis.GetPeopleAssessed())
	for _, r := range short {
		line := fmt.Sprintf("- %s: nivå %d krävs för %d personer; %d av %d bedömda når nivån; %d saknas; genomsnittligt gap %.1f nivåer.\n",
			label(cmp.Or(r.GetReplacedBy(), r.GetSkill())), r.GetRequiredLevel(), r.GetHeadcount(), r.GetQualified(), r.GetAssessed(),
			r.GetHeadcountShort(), r.GetAverageGap())
		if rationale.Len()+len(line) > needRationaleMax {
			break
		}
		rationale.WriteString(line)
	}

	targets := req.GetTargetGroups()
	if len(targets) == 0 {
		targets = []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_EMPLOYED_AT_RISK}
	}
	need := &councilsv1.CompetenceNeed{
		Title:        clip("Kompetensbehov: "+strings.Join(labels, ", "), needTitleMax),
		Description:  fmt.Sprintf("Föreslaget av kompetensnavet ur kompetenskartläggningen %s.", g.mapping.GetName()),
		Skills:       skillNames,
		Headcount:    min(headcount, needHeadcountMax),
		TargetGroups: targets,
		Rationale:    strings.TrimRight(rationale.String(), "\n"),
	}
	// For a sector the municipalities stay empty: all of the council's.
	// For a company they are the company's, from the companies service,
	// and the need is for the company's council.
	if companySubjectRE.MatchString(g.mapping.GetSubject()) {
		need.RequestedBy = g.mapping.GetSubject()
		if s.companies != nil {
			c, err := s.company(ctx, "name", g.mapping.GetSubject())
			if status.Code(err) == codes.InvalidArgument {
				return nil, wrongState(g.mapping.GetName(), "SUBJECT",
					fmt.Sprintf("%s is a mapping of %s, which the companies service no longer has", g.mapping.GetName(), g.mapping.GetSubject()))
			}
			if err != nil {
				return nil, err
			}
			if c.GetMunicipality() != "" {
				need.Municipalities = []string{c.GetMunicipality()}
			}
			need.Description += fmt.Sprintf(" %s (%s) hör till %s: lämna behovet där.", c.GetDisplayName(), c.GetName(), c.GetCouncil())
		}
	}
	return need, nil
}

// clip cuts s to at most n characters, ending it with "…" when cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
