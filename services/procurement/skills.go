package procurement

import (
	"context"
	"fmt"
	"slices"

	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The skills a provider is accredited for, a lot covers and a call-off
// trains are names of the skills service's taxonomy. They are checked with
// it over gRPC before anything is written, all of a request's skills in one
// BatchGetSkills call: an unknown skill, or a deprecated one, is the
// caller's bad field.

// skillRef is a skill a request names, and the field (proto path) that
// names it.
type skillRef struct{ field, name string }

// maxSkillsPerCall is how many names one BatchGetSkills call takes.
const maxSkillsPerCall = 1000

// skillAnswers is what the skills service said about skills, by name: the
// skill, or nil for one it does not have. A write that is retried keeps
// its answers, so it asks about each skill once.
type skillAnswers map[string]*skillsv1.Skill

func providerSkills(p *provider, prefix string) []skillRef {
	refs := make([]skillRef, 0, len(p.GetAccreditations()))
	for i, a := range p.GetAccreditations() {
		refs = append(refs, skillRef{fmt.Sprintf("%s.accreditations[%d].skill_area", prefix, i), a.GetSkillArea()})
	}
	return refs
}

func agreementSkills(a *agreement, prefix string) []skillRef {
	var refs []skillRef
	for i, l := range a.GetLots() {
		for j, area := range l.GetSkillAreas() {
			refs = append(refs, skillRef{fmt.Sprintf("%s.lots[%d].skill_areas[%d]", prefix, i, j), area})
		}
	}
	return refs
}

func callOffSkills(c *callOff, prefix string) []skillRef {
	refs := make([]skillRef, 0, len(c.GetSpecification().GetSkills()))
	for i, sk := range c.GetSpecification().GetSkills() {
		refs = append(refs, skillRef{fmt.Sprintf("%s.specification.skills[%d]", prefix, i), sk})
	}
	return refs
}

// added are the refs whose skill is not among before's: what an update
// brings in. Skills a resource already names were checked when they came
// in; one deprecated since does not block an unrelated edit.
func added(refs, before []skillRef) []skillRef {
	had := make(map[string]bool, len(before))
	for _, r := range before {
		had[r.name] = true
	}
	var out []skillRef
	for _, r := range refs {
		if !had[r.name] {
			out = append(out, r)
		}
	}
	return out
}

// checkSkills adds a violation for each ref whose skill the skills service
// does not have or has deprecated (naming its successor), asking it, on
// the caller's behalf, about the skills known does not hold yet: one call
// for up to maxSkillsPerCall distinct skills. The error is the skills
// service's failure to answer (UNAVAILABLE when it cannot be reached): the
// caller returns it and writes nothing.
//
// BatchGetSkills is all or nothing: when some skills do not exist it says
// which and returns none, so the others' deprecation is not known until the
// request is sent again without the unknown ones.
func (s *Service) checkSkills(ctx context.Context, v *apierr.Violations, refs []skillRef, known skillAnswers) error {
	var ask []string
	for _, r := range refs {
		if _, ok := known[r.name]; !ok && !slices.Contains(ask, r.name) {
			ask = append(ask, r.name)
		}
	}
	client := skillsv1.NewSkillsServiceClient(s.skills)
	for names := range slices.Chunk(ask, maxSkillsPerCall) {
		resp, err := client.BatchGetSkills(ctx, &skillsv1.BatchGetSkillsRequest{Names: names})
		if missing := missingSkills(err); len(missing) > 0 && ctx.Err() == nil {
			for _, n := range missing {
				known[n] = nil
			}
			continue
		}
		if err != nil {
			return s.skills.Err(ctx, err)
		}
		for _, sk := range resp.GetSkills() {
			known[sk.GetName()] = sk
		}
	}
	for _, r := range refs {
		sk, answered := known[r.name]
		switch {
		case !answered: // in a batch refused for another skill
		case sk == nil:
			v.Add(r.field, "%s is not a skill of the taxonomy (see GET /v1/skills:search)", r.name)
		case sk.GetDeprecated() && sk.GetReplacedBy() != "":
			v.Add(r.field, "%s is deprecated; use its successor %s", r.name, sk.GetReplacedBy())
		case sk.GetDeprecated():
			v.Add(r.field, "%s is deprecated", r.name)
		}
	}
	return nil
}

// missingSkills are the skills a NOT_FOUND answer of BatchGetSkills names
// in its ResourceInfo details; none for any other answer.
func missingSkills(err error) []string {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.NotFound {
		return nil
	}
	var out []string
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.ResourceInfo); ok && ri.GetResourceName() != "" {
			out = append(out, ri.GetResourceName())
		}
	}
	return out
}
