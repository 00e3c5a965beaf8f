package skills

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/masks"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

var (
	skillMutable = []string{"preferred_label", "alternative_labels", "description", "broader", "esco_uri", "jobtech_concept_id"}
	skillIgnored = []string{"name", "deprecated", "replaced_by", "create_time", "update_time", "create_version", "update_version", "etag"}
)

// maxDepth bounds the hierarchy a broader chain is followed through.
const maxDepth = 100

// parentOf reads the broader skill of a skill during a change: from the
// batch being written when it is in it, else from the store.
type parentOf func(ctx context.Context, name string) (sk *skillsv1.Skill, err error)

// checkBroader checks that making broader the parent of the skill called
// name keeps the taxonomy a hierarchy: broader exists, is not deprecated,
// and does not have the skill among its own broader skills.
func checkBroader(ctx context.Context, v *apierr.Violations, field, name, broader string, lookup parentOf) error {
	if broader == "" {
		return nil
	}
	if broader == name {
		v.Add(field, "cannot be the skill itself")
		return nil
	}
	parent, err := lookup(ctx, broader)
	if err != nil {
		return err
	}
	switch {
	case parent == nil:
		v.Add(field, "%s does not exist", broader)
		return nil
	case parent.GetDeprecated():
		v.Add(field, "%s is deprecated (replaced by %s); use its successor", broader, parent.GetReplacedBy())
		return nil
	}
	chain := []string{name, broader}
	for at := parent; at.GetBroader() != ""; {
		chain = append(chain, at.GetBroader())
		if at.GetBroader() == name {
			v.Add(field, "would make the hierarchy a cycle: %s", strings.Join(chain, " → "))
			return nil
		}
		if len(chain) > maxDepth {
			v.Add(field, "the hierarchy above %s is deeper than %d skills", broader, maxDepth)
			return nil
		}
		if at, err = lookup(ctx, at.GetBroader()); err != nil {
			return err
		}
		if at == nil {
			return nil
		}
	}
	return nil
}

// storedSkill looks skills up as they are stored.
func (s *Service) storedSkill(ctx context.Context, name string) (*skillsv1.Skill, error) {
	sk, err := s.loadSkill(ctx, skillID(name))
	if status.Code(err) == codes.NotFound {
		return nil, nil
	}
	return sk, err
}

// CreateSkill implements skillsv1.SkillsServiceServer.
func (s *Service) CreateSkill(ctx context.Context, req *skillsv1.CreateSkillRequest) (*skillsv1.Skill, error) {
	id := req.GetSkillId()
	if id == "" {
		id = uuid.NewString()
	}
	name := skillName(id)
	fingerprint := store.Fingerprint(req)
	var created *skillsv1.Skill
	_, replay, err := s.changeTaxonomy(ctx, func(c *change) error {
		sk := proto.CloneOf(req.GetSkill())
		sk.Name, sk.Deprecated, sk.ReplacedBy = name, false, ""
		sk.CreateTime, sk.CreateVersion = c.now, c.version
		var v apierr.Violations
		if err := checkBroader(ctx, &v, "skill.broader", name, sk.GetBroader(), s.storedSkill); err != nil {
			return err
		}
		if err := v.Err(); err != nil {
			return err
		}
		if req.GetRequestId() != "" {
			c.tx.Idempotent(idemKey("skill", req.GetRequestId()), name, fingerprint)
		}
		c.tx.MustNotExist(skillKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", name))
		created = sk
		return c.put(sk, "skill.created")
	})
	if err != nil {
		return nil, err
	}
	if replay != nil {
		return s.GetSkill(ctx, &skillsv1.GetSkillRequest{Name: replay.Name})
	}
	return created, nil
}

// GetSkill implements skillsv1.SkillsServiceServer.
func (s *Service) GetSkill(ctx context.Context, req *skillsv1.GetSkillRequest) (*skillsv1.Skill, error) {
	id, err := parseSkillName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if req.GetVersion() == 0 {
		return s.loadSkill(ctx, id)
	}
	if _, err := s.checkVersion(ctx, req.GetVersion()); err != nil {
		return nil, err
	}
	at, err := s.skillsAt(ctx, []string{req.GetName()}, req.GetVersion())
	if err != nil {
		return nil, err
	}
	if len(at) == 0 {
		return nil, status.Errorf(codes.NotFound, "%s did not exist at version %d of the taxonomy", req.GetName(), req.GetVersion())
	}
	return at[0], nil
}

// skillType is the skill's resource type, as ResourceInfo names it.
const skillType = "kompetensnav.se/Skill"

// BatchGetSkills implements skillsv1.SkillsServiceServer.
func (s *Service) BatchGetSkills(ctx context.Context, req *skillsv1.BatchGetSkillsRequest) (*skillsv1.BatchGetSkillsResponse, error) {
	names := req.GetNames()
	found, err := s.loadSkills(ctx, names) // one round trip
	if err != nil {
		return nil, err
	}
	out := make([]*skillsv1.Skill, 0, len(names))
	var missing []string
	given := make(map[string]bool, len(names))
	for _, n := range names {
		sk := found[n]
		switch {
		case sk == nil && !given[n]:
			missing = append(missing, n)
		case sk != nil && given[n]:
			out = append(out, proto.CloneOf(sk)) // each element its own message
		case sk != nil:
			out = append(out, sk)
		}
		given[n] = true
	}
	if len(missing) > 0 {
		return nil, skillsNotFound(missing)
	}
	return &skillsv1.BatchGetSkillsResponse{Skills: out}, nil
}

// skillsNotFound is NOT_FOUND for a batch: the message names the missing
// skills (the first ten), a ResourceInfo detail each of them.
func skillsNotFound(missing []string) error {
	shown, more := missing, ""
	if len(shown) > 10 {
		shown, more = shown[:10], fmt.Sprintf(" and %d more", len(missing)-10)
	}
	verb := "does"
	if len(missing) > 1 {
		verb = "do"
	}
	st := status.Newf(codes.NotFound, "%s%s %s not exist", strings.Join(shown, ", "), more, verb)
	details := make([]protoadapt.MessageV1, len(missing))
	for i, n := range missing {
		details[i] = &errdetails.ResourceInfo{ResourceType: skillType, ResourceName: n, Description: "no such skill in the taxonomy"}
	}
	if d, err := st.WithDetails(details...); err == nil {
		st = d
	}
	return st.Err()
}

// ListSkills implements skillsv1.SkillsServiceServer.
func (s *Service) ListSkills(ctx context.Context, req *skillsv1.ListSkillsRequest) (*skillsv1.ListSkillsResponse, error) {
	lr := listing.Request{
		Method: "ListSkills", Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	}
	version := req.GetVersion()
	lister := s.skillLister()
	cur, err := s.checkVersion(ctx, version)
	if err != nil {
		return nil, err
	}
	if version == 0 {
		version = cur
	} else {
		if o, _, _ := strings.Cut(strings.TrimSpace(req.GetOrderBy()), " "); o != "" && o != "create_version" && o != "createVersion" {
			return nil, apierr.Field("order_by", "a read at a version is in creation order (create_version, optionally desc)")
		}
		// The skills created by then are a prefix of the creation order,
		// each read as its last revision at or below the version.
		lr.Parent = fmt.Sprintf("version=%d", version)
		lr.Within = &listing.Bounds{Hi: versionKey(version + 1)}
		lister = s.skillHistoryLister(version)
	}
	page, err := lister.List(ctx, lr)
	if err != nil {
		return nil, err
	}
	return &skillsv1.ListSkillsResponse{Skills: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize(),
		Version: version, CurrentVersion: cur}, nil
}

// UpdateSkill implements skillsv1.SkillsServiceServer.
func (s *Service) UpdateSkill(ctx context.Context, req *skillsv1.UpdateSkillRequest) (*skillsv1.Skill, error) {
	in := req.GetSkill()
	if in == nil {
		return nil, apierr.Field("skill", "is required")
	}
	id, err := parseSkillName("skill.name", in.GetName())
	if err != nil {
		return nil, err
	}
	var out *skillsv1.Skill
	_, _, err = s.changeTaxonomy(ctx, func(c *change) error {
		cur, err := s.loadSkill(ctx, id)
		if err != nil {
			return err
		}
		if in.GetEtag() != "" && in.GetEtag() != cur.GetEtag() {
			return apierr.Aborted(cur.GetName())
		}
		before := proto.CloneOf(cur)
		if err := masks.Apply(req.GetUpdateMask(), cur, in, skillMutable, skillIgnored); err != nil {
			return err
		}
		out = cur
		if proto.Equal(before, cur) {
			return nil
		}
		var v apierr.Violations
		if err := s.checkRules(&v, cur, "skill"); err != nil {
			return err
		}
		if cur.GetBroader() != before.GetBroader() {
			if err := checkBroader(ctx, &v, "skill.broader", cur.GetName(), cur.GetBroader(), s.storedSkill); err != nil {
				return err
			}
		}
		if err := v.Err(); err != nil {
			return err
		}
		return c.put(cur, "skill.updated")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeprecateSkill implements skillsv1.SkillsServiceServer.
func (s *Service) DeprecateSkill(ctx context.Context, req *skillsv1.DeprecateSkillRequest) (*skillsv1.Skill, error) {
	id, err := parseSkillName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	var out *skillsv1.Skill
	_, _, err = s.changeTaxonomy(ctx, func(c *change) error {
		cur, err := s.loadSkill(ctx, id)
		if err != nil {
			return err
		}
		if req.GetEtag() != "" && req.GetEtag() != cur.GetEtag() {
			return apierr.Aborted(cur.GetName())
		}
		if cur.GetDeprecated() {
			return wrongState(cur.GetName(), "DEPRECATED", fmt.Sprintf("%s is already deprecated, replaced by %s", cur.GetName(), cur.GetReplacedBy()))
		}
		var v apierr.Violations
		if err := checkSuccessor(ctx, &v, "replaced_by", cur.GetName(), req.GetReplacedBy(), s.storedSkill); err != nil {
			return err
		}
		if err := v.Err(); err != nil {
			return err
		}
		cur.Deprecated, cur.ReplacedBy = true, req.GetReplacedBy()
		out = cur
		return c.put(cur, "skill.deprecated")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkSuccessor checks that successor may replace the skill called name:
// another skill, existing and not deprecated.
func checkSuccessor(ctx context.Context, v *apierr.Violations, field, name, successor string, lookup parentOf) error {
	if successor == name {
		v.Add(field, "cannot be the skill itself")
		return nil
	}
	next, err := lookup(ctx, successor)
	switch {
	case err != nil:
		return err
	case next == nil:
		v.Add(field, "%s does not exist", successor)
	case next.GetDeprecated():
		v.Add(field, "%s is deprecated itself (replaced by %s); name a skill in use", successor, next.GetReplacedBy())
	}
	return nil
}
