package enrolment

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/masks"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	projectMutable = []string{"reference_number", "display_name", "funder", "start_date", "end_date", "budget",
		"region", "eligible_target_groups", "targets"}
	projectIgnored = []string{"name", "state", "state_reason", "create_time", "update_time", "close_time", "etag"}
)

const (
	projectActive = enrolmentv1.Project_STATE_ACTIVE
	projectClosed = enrolmentv1.Project_STATE_CLOSED
)

func newProject() *enrolmentv1.Project { return &enrolmentv1.Project{} }

// checkProject is the domain validation of a project as it will be stored.
func checkProject(v *apierr.Violations, p *enrolmentv1.Project, prefix string) {
	checkDate(v, prefix+".start_date", p.GetStartDate())
	checkDate(v, prefix+".end_date", p.GetEndDate())
	if validDate(p.GetStartDate()) && validDate(p.GetEndDate()) && dateKey(p.GetEndDate()) < dateKey(p.GetStartDate()) {
		v.Add(prefix+".end_date", "%s is before start_date %s", dateString(p.GetEndDate()), dateString(p.GetStartDate()))
	}
	checkSEK(v, prefix+".budget", p.GetBudget())
	checkMunicipalities(v, prefix+".region", p.GetRegion())
	t := p.GetTargets()
	for _, sub := range []struct {
		field string
		n     int32
	}{{"women", t.GetWomen()}, {"employed", t.GetEmployed()}, {"job_seekers", t.GetJobSeekers()}} {
		if sub.n > t.GetParticipants() {
			v.Add(prefix+".targets."+sub.field, "%d is more than the %d participants targeted (they are counted among them)", sub.n, t.GetParticipants())
		}
	}
}

// errRefTaken fails a write whose reference number another project has.
var errRefTaken = errors.New("reference number taken")

// refTaken is ALREADY_EXISTS naming the project that has ref.
func (s *Service) refTaken(ctx context.Context, field, ref string) error {
	id, err := s.rdb.HGet(ctx, projectRefKey(ref), fieldRef).Result()
	if err != nil {
		return status.Errorf(codes.Aborted, "the reference number %s was taken and released meanwhile; retry", ref)
	}
	return status.Errorf(codes.AlreadyExists, "%s: reference number %s belongs to %s already", field, ref, projectName(id))
}

// CreateProject implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) CreateProject(ctx context.Context, req *enrolmentv1.CreateProjectRequest) (*enrolmentv1.Project, error) {
	p := proto.CloneOf(req.GetProject())
	var v apierr.Violations
	checkProject(&v, p, "project")
	if err := v.Err(); err != nil {
		return nil, err
	}
	id := req.GetProjectId()
	if id == "" {
		id = uuid.NewString()
	}
	now := timestamppb.New(s.now())
	p.Name, p.State, p.StateReason = projectName(id), projectActive, ""
	p.CreateTime, p.UpdateTime, p.CloseTime = now, now, nil

	tx := s.st.Tx()
	if req.GetRequestId() != "" {
		tx.Idempotent(idemKey("project", req.GetRequestId()), p.GetName(), store.Fingerprint(req))
	}
	tx.MustNotExist(projectKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", p.GetName()))
	tx.MustNotExist(projectRefKey(p.GetReferenceNumber()), errRefTaken)
	if err := tx.Put(projectKey(id), p); err != nil {
		return nil, err
	}
	tx.HSet(projectRefKey(p.GetReferenceNumber()), fieldRef, id)
	tx.SetIndex(projectKey(id), projectIndex.Entries(Keyspace, p))
	tx.Emit("project.created", p.GetName(), p)
	replay, err := tx.Commit(ctx)
	switch {
	case errors.Is(err, errRefTaken):
		return nil, s.refTaken(ctx, "project.reference_number", p.GetReferenceNumber())
	case err != nil:
		return nil, err
	case replay != nil:
		return s.GetProject(ctx, &enrolmentv1.GetProjectRequest{Name: replay.Name})
	}
	return p, nil
}

// GetProject implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) GetProject(ctx context.Context, req *enrolmentv1.GetProjectRequest) (*enrolmentv1.Project, error) {
	id, err := parseProjectName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	return s.loadProject(ctx, id)
}

func (s *Service) loadProject(ctx context.Context, id string) (*enrolmentv1.Project, error) {
	p := newProject()
	if err := s.st.Get(ctx, projectKey(id), p); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(projectName(id))
		}
		return nil, err
	}
	return p, nil
}

// cachedProject is the project as last read by this process: what an
// enrolment checks eligibility against, on condition (EtagIs in its step)
// that it is still the stored one.
func (s *Service) cachedProject(ctx context.Context, id string) (*enrolmentv1.Project, error) {
	s.projectsMu.RLock()
	p := s.projects[id]
	s.projectsMu.RUnlock()
	if p != nil {
		return p, nil
	}
	p, err := s.loadProject(ctx, id)
	if err != nil {
		return nil, err
	}
	s.projectsMu.Lock()
	s.projects[id] = p
	s.projectsMu.Unlock()
	return p, nil
}

// forgetProject drops a project from the cache (it changed).
func (s *Service) forgetProject(id string) {
	s.projectsMu.Lock()
	delete(s.projects, id)
	s.projectsMu.Unlock()
}

// ListProjects implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) ListProjects(ctx context.Context, req *enrolmentv1.ListProjectsRequest) (*enrolmentv1.ListProjectsResponse, error) {
	page, err := s.projectLister().List(ctx, listing.Request{
		Method: "ListProjects", Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return &enrolmentv1.ListProjectsResponse{Projects: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// UpdateProject implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) UpdateProject(ctx context.Context, req *enrolmentv1.UpdateProjectRequest) (*enrolmentv1.Project, error) {
	in := req.GetProject()
	if in == nil {
		return nil, apierr.Field("project", "is required")
	}
	id, err := parseProjectName("project.name", in.GetName())
	if err != nil {
		return nil, err
	}
	key := projectKey(id)
	defer s.forgetProject(id)
	var refTaken string
	p, err := store.Update(ctx, s.st, key, in.GetName(), in.GetEtag(), newProject,
		func(cur *enrolmentv1.Project, tx *store.Tx) error {
			if cur.GetState() != projectActive {
				return refuse("STATE", cur.GetName(), "cannot update %s: it is %s; only an ACTIVE project can be changed", cur.GetName(), cur.GetState())
			}
			before := proto.CloneOf(cur)
			if err := masks.Apply(req.GetUpdateMask(), cur, in, projectMutable, projectIgnored); err != nil {
				return err
			}
			if proto.Equal(before, cur) {
				return store.ErrUnchanged
			}
			var v apierr.Violations
			if err := s.checkRules(&v, cur, "project"); err != nil {
				return err
			}
			checkProject(&v, cur, "project")
			if err := v.Err(); err != nil {
				return err
			}
			if dateKey(before.GetStartDate()) != dateKey(cur.GetStartDate()) || dateKey(before.GetEndDate()) != dateKey(cur.GetEndDate()) {
				if err := s.offeringsWithin(ctx, tx, cur); err != nil {
					return err
				}
			}
			if ref := cur.GetReferenceNumber(); ref != before.GetReferenceNumber() {
				refTaken = ref
				tx.MustNotExist(projectRefKey(ref), errRefTaken)
				tx.Del(projectRefKey(before.GetReferenceNumber()))
				tx.HSet(projectRefKey(ref), fieldRef, id)
			}
			cur.UpdateTime = timestamppb.New(s.now())
			if err := tx.Put(key, cur); err != nil {
				return err
			}
			tx.SetIndex(key, projectIndex.Entries(Keyspace, cur))
			tx.Emit("project.updated", cur.GetName(), cur)
			return nil
		})
	if errors.Is(err, errRefTaken) {
		return nil, s.refTaken(ctx, "project.reference_number", refTaken)
	}
	return p, err
}

// offeringsWithin refuses new project dates that would leave sessions of
// the project's offerings (those not CANCELLED) outside them, naming each;
// the offerings are pinned in tx as read, so one changed meanwhile makes
// the update read again.
func (s *Service) offeringsWithin(ctx context.Context, tx *store.Tx, p *enrolmentv1.Project) error {
	offerings, err := s.projectOfferings(ctx, p.GetName())
	if err != nil {
		return err
	}
	var r refusal
	for _, o := range offerings {
		id, _ := parseOfferingName("", o.GetName())
		tx.EtagIs(offeringKey(id), o.GetEtag(), nil)
		if o.GetState() == offeringCancelled {
			continue
		}
		for _, ses := range o.GetSessions() {
			if k := dateKey(ses.GetDate()); k < dateKey(p.GetStartDate()) || k > dateKey(p.GetEndDate()) {
				r.add("PROJECT_PERIOD", o.GetName(), "%s has a session on %s, outside %s – %s", o.GetName(),
					dateString(ses.GetDate()), dateString(p.GetStartDate()), dateString(p.GetEndDate()))
				break
			}
		}
	}
	return r.err(p.GetName() + ": the new dates leave offerings' sessions outside the project; move or cancel those offerings first")
}

// projectOfferings reads every offering of a project, from its index set
// (a project has tens of offerings, hundreds at most).
func (s *Service) projectOfferings(ctx context.Context, project string) ([]*enrolmentv1.Offering, error) {
	var names []string
	after := ""
	for {
		ms, err := s.st.Range(ctx, offeringIndex.Key(Keyspace, "create_time", false, "project", project), after, 1000)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			names = append(names, listing.MemberName(m))
		}
		if len(ms) < 1000 {
			break
		}
		after = ms[len(ms)-1]
	}
	var out []*enrolmentv1.Offering
	for i := 0; i < len(names); i += 500 {
		batch, err := s.loadOfferings(ctx, names[i:min(i+500, len(names))])
		if err != nil {
			return nil, err
		}
		out = append(out, batch...)
	}
	return out, nil
}

// CloseProject implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) CloseProject(ctx context.Context, req *enrolmentv1.CloseProjectRequest) (*enrolmentv1.Project, error) {
	id, err := parseProjectName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	defer s.forgetProject(id)
	key := projectKey(id)
	return store.Update(ctx, s.st, key, req.GetName(), req.GetEtag(), newProject,
		func(cur *enrolmentv1.Project, tx *store.Tx) error {
			if cur.GetState() != projectActive {
				return refuse("STATE", cur.GetName(), "cannot close %s: it is %s already", cur.GetName(), cur.GetState())
			}
			now := timestamppb.New(s.now())
			cur.State, cur.StateReason, cur.CloseTime, cur.UpdateTime = projectClosed, req.GetReason(), now, now
			if err := tx.Put(key, cur); err != nil {
				return err
			}
			tx.SetIndex(key, projectIndex.Entries(Keyspace, cur))
			tx.Emit("project.closed", cur.GetName(), cur)
			return nil
		})
}

// projectViolation names what is wrong with an offering's project.
func projectViolation(p *enrolmentv1.Project) string {
	return fmt.Sprintf("%s is %s; it takes offerings and enrolments only while ACTIVE", p.GetName(), p.GetState())
}
