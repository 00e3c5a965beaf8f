package skills

import (
	"context"
	"fmt"

	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"google.golang.org/protobuf/proto"
)

// MaxImport is how many skills one ImportSkills call takes (the proto says
// so too); larger files are imported in batches of this size.
const MaxImport = 5000

// ImportSkills implements skillsv1.SkillsServiceServer.
func (s *Service) ImportSkills(ctx context.Context, req *skillsv1.ImportSkillsRequest) (*skillsv1.ImportSkillsResponse, error) {
	entries := req.GetSkills()
	var v apierr.Violations
	at := map[string]int{}
	for i, e := range entries {
		field := fmt.Sprintf("skills[%d].name", i)
		switch j, dup := at[e.GetName()]; {
		case e.GetName() == "":
			v.Add(field, "is required: the name of the skill the entry is, skills/{skill}")
		case skillID(e.GetName()) == "":
			v.Add(field, "must be a skill name, skills/{skill} (lower-case letters, digits and hyphens)")
		case dup:
			v.Add(field, "%s is also skills[%d]; name each skill once", e.GetName(), j)
		default:
			at[e.GetName()] = i
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}

	var resp *skillsv1.ImportSkillsResponse
	version, _, err := s.changeTaxonomy(ctx, func(c *change) error {
		resp = &skillsv1.ImportSkillsResponse{}
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.GetName()
		}
		stored, err := s.loadSkills(ctx, names)
		if err != nil {
			return err
		}
		// next is every entry's skill as it will be after the batch.
		next := make(map[string]*skillsv1.Skill, len(entries))
		for _, e := range entries {
			next[e.GetName()] = imported(stored[e.GetName()], e, c)
		}
		// References resolve to the batch first, then to the store.
		outside := map[string]*skillsv1.Skill{}
		lookup := func(ctx context.Context, name string) (*skillsv1.Skill, error) {
			if sk, ok := next[name]; ok {
				return sk, nil
			}
			if sk, ok := outside[name]; ok {
				return sk, nil
			}
			sk, err := s.storedSkill(ctx, name)
			if err != nil {
				return nil, err
			}
			outside[name] = sk
			return sk, nil
		}
		var v apierr.Violations
		for i, e := range entries {
			sk, cur := next[e.GetName()], stored[e.GetName()]
			if cur == nil || sk.GetBroader() != cur.GetBroader() {
				if err := checkBroader(ctx, &v, fmt.Sprintf("skills[%d].broader", i), sk.GetName(), sk.GetBroader(), lookup); err != nil {
					return err
				}
			}
			if e.GetReplacedBy() != "" && e.GetReplacedBy() != cur.GetReplacedBy() {
				if err := checkSuccessor(ctx, &v, fmt.Sprintf("skills[%d].replaced_by", i), sk.GetName(), e.GetReplacedBy(), lookup); err != nil {
					return err
				}
			}
		}
		if err := v.Err(); err != nil {
			return err
		}
		for _, e := range entries {
			sk, cur := next[e.GetName()], stored[e.GetName()]
			event := "skill.updated"
			switch {
			case cur == nil:
				resp.Created++
				event = "skill.created"
			case proto.Equal(cur, sk):
				resp.Unchanged++
				continue
			default:
				resp.Updated++
				if sk.GetDeprecated() && !cur.GetDeprecated() {
					event = "skill.deprecated"
				}
			}
			if err := c.put(sk, event); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.Version = version
	return resp, nil
}

// imported is the skill an import entry makes of the stored one (nil for
// a new skill): every mutable field as the entry has it, and deprecated
// when the entry names a successor. A deprecation is never undone by an
// entry that names none.
func imported(cur, e *skillsv1.Skill, c *change) *skillsv1.Skill {
	var sk *skillsv1.Skill
	if cur == nil {
		sk = &skillsv1.Skill{Name: e.GetName(), CreateTime: c.now, CreateVersion: c.version}
	} else {
		sk = proto.CloneOf(cur)
	}
	sk.PreferredLabel = e.GetPreferredLabel()
	sk.AlternativeLabels = e.GetAlternativeLabels()
	sk.Description = e.GetDescription()
	sk.Broader = e.GetBroader()
	sk.EscoUri = e.GetEscoUri()
	sk.JobtechConceptId = e.GetJobtechConceptId()
	if e.GetReplacedBy() != "" {
		sk.Deprecated, sk.ReplacedBy = true, e.GetReplacedBy()
	}
	return sk
}
