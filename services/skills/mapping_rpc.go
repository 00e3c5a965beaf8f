package skills

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/masks"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	mappingMutable = []string{"subject", "display_name", "description", "requirements"}
	mappingIgnored = []string{"name", "create_time", "update_time", "etag"}
)

func newMapping() *skillsv1.CompetenceMapping { return &skillsv1.CompetenceMapping{} }

// checkSkillRefs checks skills a new or changed resource names: each
// exists, is not deprecated (its successor is named instead) and appears
// once. field(i) is the field of the i-th; skills are never deleted, so
// what is checked here stays true.
func (s *Service) checkSkillRefs(ctx context.Context, v *apierr.Violations, names []string, field func(i int) string) error {
	found, err := s.loadSkills(ctx, names)
	if err != nil {
		return err
	}
	first := map[string]int{}
	for i, n := range names {
		if j, dup := first[n]; dup {
			v.Add(field(i), "%s is named twice (also at %d); name each skill once", n, j)
			continue
		}
		first[n] = i
		switch sk := found[n]; {
		case sk == nil:
			v.Add(field(i), "%s does not exist in the taxonomy", n)
		case sk.GetDeprecated():
			v.Add(field(i), "%s is deprecated; use its successor %s", n, sk.GetReplacedBy())
		}
	}
	return nil
}

func requirementSkills(m *skillsv1.CompetenceMapping) []string {
	out := make([]string, len(m.GetRequirements()))
	for i, r := range m.GetRequirements() {
		out[i] = r.GetSkill()
	}
	return out
}

// checkSubject checks the mapping's subject with the service that owns it:
// a council with the councils service, a company with the companies
// service. (A deployment without one checks the form only.)
func (s *Service) checkSubject(ctx context.Context, field, subject string) error {
	switch {
	case councilSubjectRE.MatchString(subject) && s.councils != nil:
		_, err := councilsv1.NewCouncilsServiceClient(s.councils).GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: subject})
		return s.councils.Err(ctx, err, peer.On(codes.NotFound, apierr.Field(field, "%s does not exist", subject)))
	case companySubjectRE.MatchString(subject) && s.companies != nil:
		_, err := s.company(ctx, field, subject)
		return err
	}
	return nil
}

// company reads a company from the companies service; one it does not
// have is the caller's bad field.
func (s *Service) company(ctx context.Context, field, name string) (*companiesv1.Company, error) {
	c, err := companiesv1.NewCompaniesServiceClient(s.companies).GetCompany(ctx, &companiesv1.GetCompanyRequest{Name: name})
	if err != nil {
		return nil, s.companies.Err(ctx, err, peer.On(codes.NotFound, apierr.Field(field, "%s does not exist", name)))
	}
	return c, nil
}

// CreateMapping implements skillsv1.SkillsServiceServer.
func (s *Service) CreateMapping(ctx context.Context, req *skillsv1.CreateMappingRequest) (*skillsv1.CompetenceMapping, error) {
	m := proto.CloneOf(req.GetMapping())
	clearRequirementOutputs(m)
	var v apierr.Violations
	if err := s.checkSkillRefs(ctx, &v, requirementSkills(m), func(i int) string { return fmt.Sprintf("mapping.requirements[%d].skill", i) }); err != nil {
		return nil, err
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.checkSubject(ctx, "mapping.subject", m.GetSubject()); err != nil {
		return nil, err
	}
	id := req.GetMappingId()
	if id == "" {
		id = uuid.NewString()
	}
	now := timestamppb.New(s.now())
	m.Name, m.CreateTime, m.UpdateTime = mappingName(id), now, now

	tx := s.st.Tx()
	if req.GetRequestId() != "" {
		tx.Idempotent(idemKey("mapping", req.GetRequestId()), m.GetName(), store.Fingerprint(req))
	}
	tx.MustNotExist(mappingKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", m.GetName()))
	if err := tx.Put(mappingKey(id), m); err != nil {
		return nil, err
	}
	s.indexMapping(tx, m)
	tx.Emit("mapping.created", m.GetName(), m)
	replay, err := tx.Commit(ctx)
	if err != nil {
		return nil, err
	}
	if replay != nil {
		return s.GetMapping(ctx, &skillsv1.GetMappingRequest{Name: replay.Name})
	}
	return m, s.showSuccessors(ctx, m)
}

func clearRequirementOutputs(m *skillsv1.CompetenceMapping) {
	for _, r := range m.GetRequirements() {
		r.ReplacedBy = ""
	}
}

// showSuccessorsOf is showSuccessors for a page of one message type.
func showSuccessorsOf[M proto.Message](ctx context.Context, s *Service, items []M) error {
	ms := make([]proto.Message, len(items))
	for i, m := range items {
		ms[i] = m
	}
	return s.showSuccessors(ctx, ms...)
}

// showSuccessors fills in the successor of every deprecated skill the
// resources name (an output, never stored).
func (s *Service) showSuccessors(ctx context.Context, ms ...proto.Message) error {
	var names []string
	eachSkillRef(ms, func(skill string, _ func(string)) { names = append(names, skill) })
	succ, err := s.successors(ctx, names)
	if err != nil {
		return err
	}
	eachSkillRef(ms, func(skill string, set func(string)) { set(succ[skill]) })
	return nil
}

// eachSkillRef calls f with every skill reference of the resources and a
// setter of its replaced_by.
func eachSkillRef(ms []proto.Message, f func(skill string, setReplacedBy func(string))) {
	for _, m := range ms {
		switch r := m.(type) {
		case *skillsv1.CompetenceMapping:
			for _, q := range r.GetRequirements() {
				f(q.GetSkill(), func(n string) { q.ReplacedBy = n })
			}
		case *skillsv1.IndustryValidation:
			for _, q := range r.GetResults() {
				f(q.GetSkill(), func(n string) { q.ReplacedBy = n })
			}
		case *skillsv1.CompetenceCertificate:
			for _, q := range r.GetSkills() {
				f(q.GetSkill(), func(n string) { q.ReplacedBy = n })
			}
		}
	}
}

func (s *Service) loadMapping(ctx context.Context, id string) (*skillsv1.CompetenceMapping, error) {
	m := newMapping()
	if err := s.st.Get(ctx, mappingKey(id), m); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(mappingName(id))
		}
		return nil, err
	}
	return m, nil
}

// GetMapping implements skillsv1.SkillsServiceServer.
func (s *Service) GetMapping(ctx context.Context, req *skillsv1.GetMappingRequest) (*skillsv1.CompetenceMapping, error) {
	id, err := parseMappingName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	m, err := s.loadMapping(ctx, id)
	if err != nil {
		return nil, err
	}
	return m, s.showSuccessors(ctx, m)
}

// ListMappings implements skillsv1.SkillsServiceServer.
func (s *Service) ListMappings(ctx context.Context, req *skillsv1.ListMappingsRequest) (*skillsv1.ListMappingsResponse, error) {
	page, err := s.mappingLister().List(ctx, listing.Request{
		Method: "ListMappings", Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	if err := showSuccessorsOf(ctx, s, page.Items); err != nil {
		return nil, err
	}
	return &skillsv1.ListMappingsResponse{Mappings: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// UpdateMapping implements skillsv1.SkillsServiceServer.
func (s *Service) UpdateMapping(ctx context.Context, req *skillsv1.UpdateMappingRequest) (*skillsv1.CompetenceMapping, error) {
	in := req.GetMapping()
	if in == nil {
		return nil, apierr.Field("mapping", "is required")
	}
	id, err := parseMappingName("mapping.name", in.GetName())
	if err != nil {
		return nil, err
	}
	key := mappingKey(id)
	m, err := store.Update(ctx, s.st, key, in.GetName(), in.GetEtag(), newMapping,
		func(cur *skillsv1.CompetenceMapping, tx *store.Tx) error {
			before := proto.CloneOf(cur)
			if err := masks.Apply(req.GetUpdateMask(), cur, in, mappingMutable, mappingIgnored); err != nil {
				return err
			}
			clearRequirementOutputs(cur)
			if proto.Equal(before, cur) {
				return store.ErrUnchanged
			}
			var v apierr.Violations
			if err := s.checkRules(&v, cur, "mapping"); err != nil {
				return err
			}
			if !proto.Equal(&skillsv1.CompetenceMapping{Requirements: before.GetRequirements()}, &skillsv1.CompetenceMapping{Requirements: cur.GetRequirements()}) {
				if err := s.checkChangedRequirements(ctx, &v, before, cur); err != nil {
					return err
				}
			}
			if err := v.Err(); err != nil {
				return err
			}
			if cur.GetSubject() != before.GetSubject() {
				if err := s.checkSubject(ctx, "mapping.subject", cur.GetSubject()); err != nil {
					return err
				}
			}
			cur.UpdateTime = timestamppb.New(s.now())
			if err := tx.Put(key, cur); err != nil {
				return err
			}
			s.indexMapping(tx, cur)
			tx.Emit("mapping.updated", cur.GetName(), cur)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return m, s.showSuccessors(ctx, m)
}

// checkChangedRequirements checks the requirements of an update: every
// skill once, and the skills it adds exist and are in use (those it kept
// may have been deprecated since; they keep working).
func (s *Service) checkChangedRequirements(ctx context.Context, v *apierr.Violations, before, after *skillsv1.CompetenceMapping) error {
	kept := map[string]bool{}
	for _, r := range before.GetRequirements() {
		kept[r.GetSkill()] = true
	}
	var added []string
	var at []int
	seen := map[string]int{}
	for i, r := range after.GetRequirements() {
		if j, dup := seen[r.GetSkill()]; dup {
			v.Add(fmt.Sprintf("mapping.requirements[%d].skill", i), "%s is named twice (also at %d); name each skill once", r.GetSkill(), j)
			continue
		}
		seen[r.GetSkill()] = i
		if !kept[r.GetSkill()] {
			added, at = append(added, r.GetSkill()), append(at, i)
		}
	}
	return s.checkSkillRefs(ctx, v, added, func(i int) string { return fmt.Sprintf("mapping.requirements[%d].skill", at[i]) })
}

// DeleteMapping implements skillsv1.SkillsServiceServer.
func (s *Service) DeleteMapping(ctx context.Context, req *skillsv1.DeleteMappingRequest) (*emptypb.Empty, error) {
	id, err := parseMappingName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := mappingKey(id)
	_, err = store.Update(ctx, s.st, key, req.GetName(), req.GetEtag(), newMapping,
		func(cur *skillsv1.CompetenceMapping, tx *store.Tx) error {
			// Checked inside the write: a validation recorded at the same
			// moment either lands first (and blocks this) or finds no
			// mapping.
			tx.MustNotExist(mappingValidationsKey(id), wrongState(cur.GetName(), "VALIDATIONS",
				cur.GetName()+" has validations recorded against it; they are the record of what people were assessed against, so it stays"))
			tx.DropIndex(key)
			tx.Del(key)
			tx.Emit("mapping.deleted", cur.GetName(), cur)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// eventCopy is what an event carries of a resource: everything but the
// fields marked sensitive, which never leave the service in events.
func eventCopy[T proto.Message](m T) T {
	c := proto.CloneOf(m)
	auth.Redact(c)
	return c
}
