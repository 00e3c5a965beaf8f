package enrolment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/masks"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"go.einride.tech/aip/fieldmask"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var (
	offeringMutable = []string{"title", "sessions", "capacity", "municipality", "language", "mode", "registration_deadline"}
	offeringIgnored = []string{"name", "provider", "skills", "days", "enrolled_count", "waitlisted_count", "state",
		"state_reason", "create_time", "update_time", "etag", "call_off_value"}
	// offeringImmutable may be sent back unchanged, never changed.
	offeringImmutable = []string{"call_off", "project"}
)

type offeringState = enrolmentv1.Offering_State

const (
	offeringPlanned   = enrolmentv1.Offering_STATE_PLANNED
	offeringOpen      = enrolmentv1.Offering_STATE_OPEN
	offeringRunning   = enrolmentv1.Offering_STATE_RUNNING
	offeringFinished  = enrolmentv1.Offering_STATE_FINISHED
	offeringCancelled = enrolmentv1.Offering_STATE_CANCELLED
)

func newOffering() *enrolmentv1.Offering { return &enrolmentv1.Offering{} }

// checkOffering is the domain validation of an offering as it will be
// stored; with its project, also that the sessions lie within the project
// period. It canonicalises the language.
func checkOffering(v *apierr.Violations, o *enrolmentv1.Offering, prefix string, project *enrolmentv1.Project) {
	for i, ses := range o.GetSessions() {
		f := fmt.Sprintf("%s.sessions[%d]", prefix, i)
		checkDate(v, f+".date", ses.GetDate())
		checkTime(v, f+".start_time", ses.GetStartTime())
		checkTime(v, f+".end_time", ses.GetEndTime())
		if ses.GetStartTime() != nil && ses.GetEndTime() != nil && timeKey(ses.GetEndTime()) <= timeKey(ses.GetStartTime()) {
			v.Add(f+".end_time", "must be after start_time")
		}
		if !validDate(ses.GetDate()) {
			continue
		}
		if i > 0 && validDate(o.GetSessions()[i-1].GetDate()) && dateKey(ses.GetDate()) <= dateKey(o.GetSessions()[i-1].GetDate()) {
			v.Add(f+".date", "%s must come after the session before it (one session a day, in date order)", dateString(ses.GetDate()))
		}
		if project != nil && (dateKey(ses.GetDate()) < dateKey(project.GetStartDate()) || dateKey(ses.GetDate()) > dateKey(project.GetEndDate())) {
			v.Add(f+".date", "%s is outside the project period of %s (%s – %s)", dateString(ses.GetDate()), project.GetName(),
				dateString(project.GetStartDate()), dateString(project.GetEndDate()))
		}
	}
	checkMunicipality(v, prefix+".municipality", o.GetMunicipality())
	o.Language = canonicalLanguage(v, prefix+".language", o.GetLanguage())
	d := o.GetRegistrationDeadline()
	checkDate(v, prefix+".registration_deadline", d)
	if first := firstDate(o); validDate(d) && validDate(first) && dateKey(d) > dateKey(first) {
		v.Add(prefix+".registration_deadline", "%s is after the first session (%s); it must be on or before it", dateString(d), dateString(first))
	}
}

// callOffFor asks for the offering's call-off and checks what the offering
// takes from it: it must be AWARDED, for the offering's project if it
// names one, and the sessions one a day.
func (s *Service) callOffFor(ctx context.Context, o *enrolmentv1.Offering) (CallOff, error) {
	co, err := s.callOffs.CallOff(ctx, o.GetCallOff())
	if errors.Is(err, ErrNotFound) {
		return co, apierr.Field("offering.call_off", "%s does not exist", o.GetCallOff())
	}
	if err != nil {
		return co, err
	}
	if !co.Awarded {
		return co, refuse("CALL_OFF_STATE", co.Name, "%s is %s; an offering can only be made from an AWARDED call-off", co.Name, co.State)
	}
	if co.Project != "" && co.Project != o.GetProject() {
		return co, refuse("CALL_OFF_PROJECT", co.Name, "%s was made for %s, not %s", co.Name, co.Project, o.GetProject())
	}
	if int32(len(o.GetSessions())) != co.Days {
		return co, apierr.Field("offering.sessions", "%s buys %d days: give %d sessions, one a day (%d given)", co.Name, co.Days, co.Days, len(o.GetSessions()))
	}
	return co, nil
}

// CreateOffering implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) CreateOffering(ctx context.Context, req *enrolmentv1.CreateOfferingRequest) (*enrolmentv1.Offering, error) {
	in := req.GetOffering()
	projectID, err := parseProjectName("offering.project", in.GetProject())
	if err != nil {
		return nil, err
	}
	var v apierr.Violations
	checkOffering(&v, proto.CloneOf(in), "offering", nil)
	if err := v.Err(); err != nil {
		return nil, err
	}
	co, err := s.callOffFor(ctx, in)
	if err != nil {
		return nil, err
	}
	id := req.GetOfferingId()
	if id == "" {
		id = uuid.NewString()
	}
	fingerprint := store.Fingerprint(req)
	for range 20 {
		project, err := s.loadProject(ctx, projectID)
		if status.Code(err) == codes.NotFound {
			return nil, apierr.Field("offering.project", "%s does not exist", in.GetProject())
		}
		if err != nil {
			return nil, err
		}
		if project.GetState() != projectActive {
			return nil, refuse("PROJECT_STATE", project.GetName(), "%s", projectViolation(project))
		}
		o := proto.CloneOf(in)
		var v apierr.Violations
		checkOffering(&v, o, "offering", project)
		if err := v.Err(); err != nil {
			return nil, err
		}
		now := timestamppb.New(s.now())
		o.Name, o.State, o.StateReason = offeringName(id), offeringPlanned, ""
		o.Provider, o.Skills, o.Days = co.Provider, slices.Clone(co.Skills), co.Days
		o.CallOffValue = co.Value
		o.EnrolledCount, o.WaitlistedCount = 0, 0
		o.CreateTime, o.UpdateTime = now, now

		tx := s.st.Tx()
		if req.GetRequestId() != "" {
			tx.Idempotent(idemKey("offering", req.GetRequestId()), o.GetName(), fingerprint)
		}
		tx.EtagIs(projectKey(projectID), project.GetEtag(), nil)
		tx.MustNotExist(offeringKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", o.GetName()))
		if err := tx.Put(offeringKey(id), o); err != nil {
			return nil, err
		}
		tx.SetIndex(offeringKey(id), offeringIndex.Entries(Keyspace, o))
		tx.Emit("offering.created", o.GetName(), o)
		replay, err := tx.Commit(ctx)
		switch {
		case errors.Is(err, store.ErrConflict):
			continue
		case err != nil:
			return nil, err
		case replay != nil:
			return s.GetOffering(ctx, &enrolmentv1.GetOfferingRequest{Name: replay.Name})
		}
		return o, nil
	}
	return nil, status.Errorf(codes.Aborted, "%s kept changing while the offering was created; retry", in.GetProject())
}

// GetOffering implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) GetOffering(ctx context.Context, req *enrolmentv1.GetOfferingRequest) (*enrolmentv1.Offering, error) {
	found, err := s.loadOfferings(ctx, []string{req.GetName()})
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, apierr.NotFound(req.GetName())
	}
	return found[0], nil
}

// ListOfferings implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) ListOfferings(ctx context.Context, req *enrolmentv1.ListOfferingsRequest) (*enrolmentv1.ListOfferingsResponse, error) {
	page, err := s.offeringLister().List(ctx, listing.Request{
		Method: "ListOfferings", Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return &enrolmentv1.ListOfferingsResponse{Offerings: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// changesImmutable refuses an update that would change call_off or
// project; sending them back unchanged is fine (AIP-203).
func changesImmutable(mask *fieldmaskpb.FieldMask, cur, in *enrolmentv1.Offering) error {
	named := func(f string) bool {
		return len(mask.GetPaths()) == 0 || slices.Contains(mask.GetPaths(), f) || fieldmask.IsFullReplacement(mask)
	}
	if named("call_off") && in.GetCallOff() != "" && in.GetCallOff() != cur.GetCallOff() {
		return apierr.Field("offering.call_off", "cannot change (make a new offering from the other call-off)")
	}
	if named("project") && in.GetProject() != "" && in.GetProject() != cur.GetProject() {
		return apierr.Field("offering.project", "cannot change (make a new offering for the other project)")
	}
	return nil
}

// UpdateOffering implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) UpdateOffering(ctx context.Context, req *enrolmentv1.UpdateOfferingRequest) (*enrolmentv1.Offering, error) {
	in := req.GetOffering()
	if in == nil {
		return nil, apierr.Field("offering", "is required")
	}
	id, err := parseOfferingName("offering.name", in.GetName())
	if err != nil {
		return nil, err
	}
	key := offeringKey(id)
	return store.Update(ctx, s.st, key, in.GetName(), in.GetEtag(), newOffering,
		func(cur *enrolmentv1.Offering, tx *store.Tx) error {
			if cur.GetState() != offeringPlanned {
				return wrongOfferingState(cur, "edit", offeringPlanned)
			}
			if err := changesImmutable(req.GetUpdateMask(), cur, in); err != nil {
				return err
			}
			before := proto.CloneOf(cur)
			if err := masks.Apply(req.GetUpdateMask(), cur, in, offeringMutable, append(slices.Clone(offeringIgnored), offeringImmutable...)); err != nil {
				return err
			}
			if proto.Equal(before, cur) {
				return store.ErrUnchanged
			}
			projectID, _ := parseProjectName("", cur.GetProject())
			project, err := s.loadProject(ctx, projectID)
			if err != nil {
				return err
			}
			var v apierr.Violations
			if err := s.checkRules(&v, cur, "offering"); err != nil {
				return err
			}
			checkOffering(&v, cur, "offering", project)
			if int32(len(cur.GetSessions())) != cur.GetDays() {
				v.Add("offering.sessions", "%s buys %d days: give %d sessions, one a day (%d given)", cur.GetCallOff(), cur.GetDays(), cur.GetDays(), len(cur.GetSessions()))
			}
			if err := v.Err(); err != nil {
				return err
			}
			if proto.Equal(before, cur) { // only the language's spelling changed
				return store.ErrUnchanged
			}
			tx.EtagIs(projectKey(projectID), project.GetEtag(), nil)
			cur.UpdateTime = timestamppb.New(s.now())
			if err := tx.Put(key, cur); err != nil {
				return err
			}
			tx.SetIndex(key, offeringIndex.Entries(Keyspace, cur))
			tx.Emit("offering.updated", cur.GetName(), cur)
			return nil
		})
}

// wrongOfferingState is FAILED_PRECONDITION naming the offering's state.
func wrongOfferingState(o *enrolmentv1.Offering, verb string, allowed ...offeringState) error {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = a.String()
	}
	return refuse("STATE", o.GetName(), "cannot %s %s: it is %s; that needs %s", verb, o.GetName(), o.GetState(), strings.Join(names, " or "))
}

// An offeringTransition is one custom method of the offering lifecycle.
type offeringTransition struct {
	verb, event string
	from        []offeringState
	to          offeringState
}

var (
	openT   = offeringTransition{"open", "offering.opened", []offeringState{offeringPlanned}, offeringOpen}
	startT  = offeringTransition{"start", "offering.started", []offeringState{offeringOpen}, offeringRunning}
	finishT = offeringTransition{"finish", "offering.finished", []offeringState{offeringRunning}, offeringFinished}
	cancelT = offeringTransition{"cancel", "offering.cancelled", []offeringState{offeringPlanned, offeringOpen}, offeringCancelled}
)

// move runs t on the offering called name; the state is checked against
// the offering as stored when the write lands.
func (s *Service) move(ctx context.Context, name, etag string, t offeringTransition, edit func(o *enrolmentv1.Offering, tx *store.Tx) error) (*enrolmentv1.Offering, error) {
	id, err := parseOfferingName("name", name)
	if err != nil {
		return nil, err
	}
	key := offeringKey(id)
	o, err := store.Update(ctx, s.st, key, name, etag, newOffering, func(o *enrolmentv1.Offering, tx *store.Tx) error {
		if !slices.Contains(t.from, o.GetState()) {
			return wrongOfferingState(o, t.verb, t.from...)
		}
		if edit != nil {
			if err := edit(o, tx); err != nil {
				return err
			}
		}
		o.State, o.UpdateTime = t.to, timestamppb.New(s.now())
		if err := tx.Put(key, o); err != nil {
			return err
		}
		tx.SetIndex(key, offeringIndex.Entries(Keyspace, o))
		tx.Emit(t.event, o.GetName(), o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.withCountsRead(ctx, o)
}

// withCountsRead fills in an offering's counts as stored now.
func (s *Service) withCountsRead(ctx context.Context, o *enrolmentv1.Offering) (*enrolmentv1.Offering, error) {
	id, _ := parseOfferingName("", o.GetName())
	pipe := s.rdb.Pipeline()
	enrolled := pipe.HGet(ctx, offeringKey(id), fieldEnrolled)
	wait := pipe.ZCard(ctx, waitlistKey(id))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.st.Err(ctx, err)
	}
	withCounts(o, enrolled.Val(), wait.Val())
	return o, nil
}

// OpenOffering implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) OpenOffering(ctx context.Context, req *enrolmentv1.OpenOfferingRequest) (*enrolmentv1.Offering, error) {
	return s.move(ctx, req.GetName(), req.GetEtag(), openT, func(o *enrolmentv1.Offering, tx *store.Tx) error {
		projectID, _ := parseProjectName("", o.GetProject())
		project, err := s.loadProject(ctx, projectID)
		if err != nil {
			return err
		}
		var r refusal
		if project.GetState() != projectActive {
			r.add("PROJECT_STATE", project.GetName(), "%s", projectViolation(project))
		}
		if dateKey(o.GetRegistrationDeadline()) < dateKey(s.today()) {
			r.add("REGISTRATION_DEADLINE", o.GetName(), "its registration deadline %s has passed; update it first",
				dateString(o.GetRegistrationDeadline()))
		}
		if err := r.err("cannot open " + o.GetName()); err != nil {
			return err
		}
		tx.EtagIs(projectKey(projectID), project.GetEtag(), nil)
		return nil
	})
}

// StartOffering implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) StartOffering(ctx context.Context, req *enrolmentv1.StartOfferingRequest) (*enrolmentv1.Offering, error) {
	return s.move(ctx, req.GetName(), req.GetEtag(), startT, nil)
}

// FinishOffering implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) FinishOffering(ctx context.Context, req *enrolmentv1.FinishOfferingRequest) (*enrolmentv1.Offering, error) {
	return s.move(ctx, req.GetName(), req.GetEtag(), finishT, nil)
}

// CancelOffering implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) CancelOffering(ctx context.Context, req *enrolmentv1.CancelOfferingRequest) (*enrolmentv1.Offering, error) {
	return s.move(ctx, req.GetName(), req.GetEtag(), cancelT, func(o *enrolmentv1.Offering, _ *store.Tx) error {
		o.StateReason = req.GetReason()
		return nil
	})
}
