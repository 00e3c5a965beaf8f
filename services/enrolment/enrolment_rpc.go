package enrolment

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	enrolled   = enrolmentv1.Enrolment_STATE_ENROLLED
	waitlisted = enrolmentv1.Enrolment_STATE_WAITLISTED
	withdrawn  = enrolmentv1.Enrolment_STATE_WITHDRAWN
)

func newEnrolment() *enrolmentv1.Enrolment { return &enrolmentv1.Enrolment{} }

// targetGroup is the target group a labour-market status belongs to; an
// inactive participant belongs to none.
func targetGroup(s enrolmentv1.LabourMarketStatus) commonv1.TargetGroup {
	switch s {
	case enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_EMPLOYED_AT_RISK:
		return commonv1.TargetGroup_TARGET_GROUP_EMPLOYED_AT_RISK
	case enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_NOTIFIED:
		return commonv1.TargetGroup_TARGET_GROUP_NOTIFIED
	case enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_FURLOUGHED:
		return commonv1.TargetGroup_TARGET_GROUP_FURLOUGHED
	case enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_LAID_OFF:
		return commonv1.TargetGroup_TARGET_GROUP_LAID_OFF
	case enrolmentv1.LabourMarketStatus_LABOUR_MARKET_STATUS_JOB_SEEKER:
		return commonv1.TargetGroup_TARGET_GROUP_JOB_SEEKER
	}
	return commonv1.TargetGroup_TARGET_GROUP_UNSPECIFIED
}

// ageBand is the ESF+ age band of age.
func ageBand(age int) enrolmentv1.AgeBand {
	switch {
	case age < 25:
		return enrolmentv1.AgeBand_AGE_BAND_UNDER_25
	case age < 30:
		return enrolmentv1.AgeBand_AGE_BAND_25_29
	case age < 55:
		return enrolmentv1.AgeBand_AGE_BAND_30_54
	}
	return enrolmentv1.AgeBand_AGE_BAND_55_PLUS
}

// public is what an event carries of an enrolment: everything but the
// sensitive fields (a withdrawal's reason).
func public(e *enrolmentv1.Enrolment) *enrolmentv1.Enrolment {
	c := proto.CloneOf(e)
	auth.Redact(c)
	return c
}

// eligibility is what an enrolment is checked against, read in one round
// trip (the project from the cache).
type eligibility struct {
	offering    *enrolmentv1.Offering
	project     *enrolmentv1.Project
	participant *enrolmentv1.Participant
	pii         []byte
	booked      string // the enrolment id of an existing booking
}

// readEligibility reads the offering, the participant and any booking of
// theirs on it in one pipelined round trip, and the offering's project
// from the cache.
func (s *Service) readEligibility(ctx context.Context, offeringID, participantID string) (eligibility, error) {
	var el eligibility
	pipe := s.rdb.Pipeline()
	off := pipe.HGet(ctx, offeringKey(offeringID), "pb")
	part := pipe.HMGet(ctx, participantKey(participantID), "pb", fieldPII)
	booking := pipe.HGet(ctx, bookingKey(offeringID, participantID), fieldRef)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return el, s.st.Err(ctx, err)
	}
	b, err := off.Bytes()
	if errors.Is(err, redis.Nil) {
		return el, apierr.NotFound(offeringName(offeringID))
	}
	el.offering = newOffering()
	if err := s.unmarshal(ctx, offeringKey(offeringID), b, el.offering); err != nil {
		return el, err
	}
	vals := part.Val()
	pb, ok := vals[0].(string)
	if !ok {
		return el, apierr.Field("enrolment.participant", "%s does not exist", participantName(participantID))
	}
	el.participant = newParticipant()
	if err := s.unmarshal(ctx, participantKey(participantID), []byte(pb), el.participant); err != nil {
		return el, err
	}
	sealedPII, _ := vals[1].(string)
	el.pii = []byte(sealedPII)
	el.booked = booking.Val()
	projectID, _ := parseProjectName("", el.offering.GetProject())
	if el.project, err = s.cachedProject(ctx, projectID); err != nil {
		return el, err
	}
	return el, nil
}

// check names every rule the enrolment breaks.
func (s *Service) check(el eligibility) error {
	var r refusal
	o, p, part := el.offering, el.project, el.participant
	if erased(part) {
		r.add("PARTICIPANT_ERASED", part.GetName(), "%s was erased; nothing new is recorded about them", part.GetName())
		return r.err("cannot enrol " + part.GetName() + " on " + o.GetName())
	}
	if o.GetState() != offeringOpen {
		r.add("OFFERING_STATE", o.GetName(), "%s is %s; enrolment needs it OPEN", o.GetName(), o.GetState())
	} else if d := o.GetRegistrationDeadline(); dateKey(d) < dateKey(s.today()) {
		r.add("REGISTRATION_DEADLINE", o.GetName(), "the registration deadline of %s, %s, has passed", o.GetName(), dateString(d))
	}
	if p.GetState() != projectActive {
		r.add("PROJECT_STATE", p.GetName(), "%s", projectViolation(p))
	}
	if !slices.Contains(p.GetRegion(), part.GetMunicipality()) {
		r.add("MUNICIPALITY", part.GetName(), "%s lives in %s, which is outside the region of %s", part.GetName(), part.GetMunicipality(), p.GetName())
	}
	if tg := targetGroup(part.GetLabourMarketStatus()); !slices.Contains(p.GetEligibleTargetGroups(), tg) {
		r.add("TARGET_GROUP", part.GetName(), "%s is %s, which is not among the target groups %s is for", part.GetName(),
			part.GetLabourMarketStatus(), p.GetName())
	}
	return r.err("cannot enrol " + part.GetName() + " on " + o.GetName())
}

// errBooked fails an enrolment of a participant who has a booking on the
// offering already.
var errBooked = errors.New("booked")

func alreadyBooked(participant, offeringID, enrolmentID string) error {
	return status.Errorf(codes.AlreadyExists, "%s is enrolled or waitlisted on %s already: %s", participant,
		offeringName(offeringID), enrolmentName(offeringID, enrolmentID))
}

// CreateEnrolment implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) CreateEnrolment(ctx context.Context, req *enrolmentv1.CreateEnrolmentRequest) (*enrolmentv1.Enrolment, error) {
	offeringID, err := parseOfferingName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	participantID, err := parseParticipantName("enrolment.participant", req.GetEnrolment().GetParticipant())
	if err != nil {
		return nil, err
	}
	id := req.GetEnrolmentId()
	if id == "" {
		id = uuid.NewString()
	}
	name, key := enrolmentName(offeringID, id), enrolmentKey(offeringID, id)
	fingerprint := store.Fingerprint(req)
	for attempt := range 20 {
		el, err := s.readEligibility(ctx, offeringID, participantID)
		if err != nil {
			return nil, err
		}
		refused := s.check(el)
		if el.booked != "" {
			refused = alreadyBooked(el.participant.GetName(), offeringID, el.booked)
		}
		if refused != nil {
			// A retry of an enrolment that was made answers with it, even
			// though enrolling now would be refused (it is booked).
			if req.GetRequestId() != "" {
				return s.replayOr(ctx, idemKey("enrolment", offeringID, req.GetRequestId()), fingerprint, refused)
			}
			return nil, refused
		}
		pd, err := s.open(ctx, el.participant, el.pii)
		if err != nil {
			return nil, err
		}
		now := s.now()
		today := s.today()
		born := birthDate(pd.GetPersonalIdentityNumber())
		snapshot, err := proto.MarshalOptions{Deterministic: true}.Marshal(&enrolmentv1.EnrolmentSnapshot{
			Participant: el.participant.GetName(), Project: el.project.GetName(), Offering: el.offering.GetName(),
			EnrolDate: today, Gender: el.participant.GetGender(),
			AgeBand:            ageBand(ageOn(time.Date(int(born.GetYear()), time.Month(born.GetMonth()), int(born.GetDay()), 0, 0, 0, 0, time.UTC), today)),
			LabourMarketStatus: el.participant.GetLabourMarketStatus(), EducationLevel: el.participant.GetEducationLevel(),
			Municipality: el.participant.GetMunicipality(), EmployerCouncil: el.participant.GetEmployerCouncil(),
		})
		if err != nil {
			return nil, err
		}
		seat := &enrolmentv1.Enrolment{Name: name, Participant: el.participant.GetName(), State: enrolled,
			Project: el.project.GetName(), CreateTime: timestamppb.New(now), UpdateTime: timestamppb.New(now)}
		wait := proto.CloneOf(seat)
		wait.State = waitlisted

		tx := s.st.Tx()
		if req.GetRequestId() != "" {
			tx.Idempotent(idemKey("enrolment", offeringID, req.GetRequestId()), name, fingerprint)
		}
		// Everything the checks above read must still be so when the
		// step lands.
		tx.EtagIs(offeringKey(offeringID), el.offering.GetEtag(), nil)
		projectID, _ := parseProjectName("", el.project.GetName())
		tx.EtagIs(projectKey(projectID), el.project.GetEtag(), nil)
		tx.EtagIs(participantKey(participantID), el.participant.GetEtag(), nil)
		tx.MustNotExist(key, status.Errorf(codes.AlreadyExists, "%s already exists", name))
		tx.MustNotExist(bookingKey(offeringID, participantID), errBooked)
		tx.HSet(bookingKey(offeringID, participantID), fieldRef, id)
		tx.HSet(key, fieldSnapshot, snapshot)
		// A seat while the enrolled count fits the capacity; else the
		// waitlist, in the order the steps land.
		toSeat, toWait := tx.Branch(store.Fits(offeringKey(offeringID), fieldEnrolled, 1, int64(el.offering.GetCapacity())))
		toSeat.HIncrBy(offeringKey(offeringID), fieldEnrolled, 1)
		if err := toSeat.Put(key, seat); err != nil {
			return nil, err
		}
		toSeat.SetIndex(key, enrolmentIndex.Entries(Keyspace, seat))
		toSeat.Emit("enrolment.enrolled", name, seat)
		toWait.ZAddSeq(waitlistKey(offeringID), id, offeringKey(offeringID), fieldWaitSeq)
		if err := toWait.Put(key, wait); err != nil {
			return nil, err
		}
		toWait.SetIndex(key, enrolmentIndex.Entries(Keyspace, wait))
		toWait.Emit("enrolment.waitlisted", name, wait)
		tx.ReportRank(waitlistKey(offeringID), id)
		replay, err := tx.Commit(ctx)
		switch {
		case errors.Is(err, store.ErrConflict):
			// The offering, project or participant changed: read again.
			s.forgetProject(projectID)
			backoff(ctx, attempt)
			continue
		case errors.Is(err, errBooked):
			booked, rerr := s.rdb.HGet(ctx, bookingKey(offeringID, participantID), fieldRef).Result()
			if rerr != nil {
				continue // withdrawn meanwhile: try again
			}
			return nil, alreadyBooked(el.participant.GetName(), offeringID, booked)
		case err != nil:
			return nil, err
		case replay != nil:
			return s.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: replay.Name})
		}
		out := tx.Outcome()
		if out.Then {
			return seat, nil
		}
		wait.WaitlistPosition = int32(out.Ranks[0]) + 1
		return wait, nil
	}
	return nil, status.Errorf(codes.Aborted, "%s kept changing while the participant was enrolled; retry", req.GetParent())
}

// replayOr answers a request refused before its write: with the first
// result if the request id was used for it (store.Replayed), else with
// refused.
func (s *Service) replayOr(ctx context.Context, key, fingerprint string, refused error) (*enrolmentv1.Enrolment, error) {
	replay, err := s.st.Replayed(ctx, key, fingerprint)
	if err != nil {
		return nil, err
	}
	if replay == nil {
		return nil, refused
	}
	return s.GetEnrolment(ctx, &enrolmentv1.GetEnrolmentRequest{Name: replay.Name})
}

// backoff waits a little before a retry, more after each, jittered so
// that writers who collided do not collide again.
func backoff(ctx context.Context, attempt int) {
	if attempt == 0 {
		return
	}
	d := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt, 10))))
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// GetEnrolment implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) GetEnrolment(ctx context.Context, req *enrolmentv1.GetEnrolmentRequest) (*enrolmentv1.Enrolment, error) {
	if _, _, err := parseEnrolmentName("name", req.GetName()); err != nil {
		return nil, err
	}
	es, err := s.loadEnrolments(ctx, []string{req.GetName()})
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, apierr.NotFound(req.GetName())
	}
	return es[0], nil
}

// ListEnrolments implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) ListEnrolments(ctx context.Context, req *enrolmentv1.ListEnrolmentsRequest) (*enrolmentv1.ListEnrolmentsResponse, error) {
	offeringID, err := parseOfferingName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if n, err := s.rdb.Exists(ctx, offeringKey(offeringID)).Result(); err != nil {
		return nil, s.st.Err(ctx, err)
	} else if n == 0 {
		return nil, apierr.NotFound(req.GetParent())
	}
	if order, err := listing.ParseOrder(req.GetOrderBy(), "create_time", "create_time", "waitlist_position"); err != nil {
		return nil, err
	} else if len(order.Fields) == 1 && order.Fields[0].Path == "waitlist_position" {
		return s.listWaitlist(ctx, req, offeringID, order.Fields[0].Desc)
	}
	page, err := s.enrolmentLister().List(ctx, listing.Request{
		Method: "ListEnrolments", Parent: req.GetParent(), Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(), Where: map[string]string{"parent": req.GetParent()},
	})
	if err != nil {
		return nil, err
	}
	return &enrolmentv1.ListEnrolmentsResponse{Enrolments: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// listWaitlist serves ListEnrolments ordered by waitlist position: a page
// read from the waitlist's sorted set after the last sequence number
// returned (keyset paging: a page costs the same however long the
// waitlist), positions from the ranks.
func (s *Service) listWaitlist(ctx context.Context, req *enrolmentv1.ListEnrolmentsRequest, offeringID string, desc bool) (*enrolmentv1.ListEnrolmentsResponse, error) {
	if desc {
		return nil, apierr.Field("order_by", "waitlist_position lists the waitlist first first; it has no desc")
	}
	f, err := listing.ParseFilter(req.GetFilter(), enrolmentFilter)
	if err != nil {
		return nil, err
	}
	terms, all := f.Terms()
	for _, t := range terms {
		if t != [2]string{"state", waitlisted.String()} {
			all = false
		}
	}
	if !all {
		return nil, apierr.Field("filter", "ordered by waitlist_position, a list is the waitlist: it takes no filter but state = STATE_WAITLISTED")
	}
	scope := listing.Scope("ListEnrolments", req.GetParent(), req.GetFilter(), "waitlist_position")
	cursor, err := s.tokens.Decode(req.GetPageToken(), scope)
	if err != nil {
		return nil, err
	}
	from := "-inf"
	if len(cursor) == 1 {
		if _, err := strconv.ParseInt(cursor[0], 10, 64); err != nil {
			return nil, apierr.Field("page_token", "is not a page token of this list request")
		}
		from = "(" + cursor[0]
	} else if len(cursor) > 1 {
		return nil, apierr.Field("page_token", "is not a page token of this list request")
	}
	size := listing.PageSize(req.GetPageSize())
	pipe := s.rdb.Pipeline()
	rng := pipe.ZRangeByScoreWithScores(ctx, waitlistKey(offeringID), &redis.ZRangeBy{Min: from, Max: "+inf", Count: int64(size) + 1})
	card := pipe.ZCard(ctx, waitlistKey(offeringID))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.st.Err(ctx, err)
	}
	zs := rng.Val()
	more := len(zs) > size
	if more {
		zs = zs[:size]
	}
	names := make([]string, len(zs))
	for i, z := range zs {
		names[i] = enrolmentName(offeringID, z.Member.(string))
	}
	es, err := s.loadEnrolments(ctx, names)
	if err != nil {
		return nil, err
	}
	resp := &enrolmentv1.ListEnrolmentsResponse{Enrolments: es, TotalSize: int32(card.Val())}
	if more {
		resp.NextPageToken = s.tokens.Encode(scope, []string{strconv.FormatInt(int64(zs[len(zs)-1].Score), 10)})
	}
	return resp, nil
}

// ListParticipantEnrolments implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) ListParticipantEnrolments(ctx context.Context, req *enrolmentv1.ListParticipantEnrolmentsRequest) (*enrolmentv1.ListParticipantEnrolmentsResponse, error) {
	participantID, err := parseParticipantName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if n, err := s.rdb.Exists(ctx, participantKey(participantID)).Result(); err != nil {
		return nil, s.st.Err(ctx, err)
	} else if n == 0 {
		return nil, apierr.NotFound(req.GetParent())
	}
	page, err := s.enrolmentLister().List(ctx, listing.Request{
		Method: "ListParticipantEnrolments", Parent: req.GetParent(), Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(), Where: map[string]string{"participant": req.GetParent()},
	})
	if err != nil {
		return nil, err
	}
	return &enrolmentv1.ListParticipantEnrolmentsResponse{Enrolments: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// WithdrawEnrolment implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) WithdrawEnrolment(ctx context.Context, req *enrolmentv1.WithdrawEnrolmentRequest) (*enrolmentv1.Enrolment, error) {
	offeringID, id, err := parseEnrolmentName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := enrolmentKey(offeringID, id)
	for attempt := range 40 {
		backoff(ctx, attempt)
		pipe := s.rdb.Pipeline()
		eb := pipe.HGet(ctx, key, "pb")
		ob := pipe.HGet(ctx, offeringKey(offeringID), "pb")
		head := pipe.ZRange(ctx, waitlistKey(offeringID), 0, 0)
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, s.st.Err(ctx, err)
		}
		b, err := eb.Bytes()
		if errors.Is(err, redis.Nil) {
			return nil, apierr.NotFound(req.GetName())
		}
		e := newEnrolment()
		if err := s.unmarshal(ctx, key, b, e); err != nil {
			return nil, err
		}
		if req.GetEtag() != "" && req.GetEtag() != e.GetEtag() {
			return nil, apierr.Aborted(req.GetName())
		}
		o := newOffering()
		if err := s.unmarshal(ctx, offeringKey(offeringID), []byte(ob.Val()), o); err != nil {
			return nil, err
		}
		if e.GetState() != enrolled && e.GetState() != waitlisted {
			return nil, refuse("STATE", e.GetName(), "cannot withdraw %s: it is %s already", e.GetName(), e.GetState())
		}
		if o.GetState() != offeringOpen && o.GetState() != offeringRunning {
			return nil, wrongOfferingState(o, "withdraw from", offeringOpen, offeringRunning)
		}
		was, seen := e.GetState(), e.GetEtag()
		now := timestamppb.New(s.now())
		e.State, e.WithdrawTime, e.UpdateTime, e.WithdrawReason, e.WaitlistPosition = withdrawn, now, now, req.GetReason(), 0

		tx := s.st.Tx()
		if req.GetReason() != "" {
			// The reason may be personal: none is kept for an erased
			// participant (and an erasure landing meanwhile makes this
			// read again).
			part, err := s.readParticipants(ctx, []string{e.GetParticipant()})
			if err != nil {
				return nil, err
			}
			if len(part) == 1 {
				pid, _ := parseParticipantName("", e.GetParticipant())
				tx.EtagIs(participantKey(pid), part[0].p.GetEtag(), nil)
				if erased(part[0].p) {
					e.WithdrawReason = ""
				}
			}
		}
		tx.EtagIs(key, seen, nil)
		tx.EtagIs(offeringKey(offeringID), o.GetEtag(), nil)
		if err := tx.Put(key, e); err != nil {
			return nil, err
		}
		tx.SetIndex(key, enrolmentIndex.Entries(Keyspace, e))
		participantID, _ := parseParticipantName("", e.GetParticipant())
		tx.Del(bookingKey(offeringID, participantID))
		tx.Emit("enrolment.withdrawn", e.GetName(), public(e))
		switch {
		case was == waitlisted:
			tx.ZRem(waitlistKey(offeringID), id) // the positions behind close up
		case len(head.Val()) == 0:
			// Nobody waits: the seat is free. (Unless someone joined the
			// waitlist meanwhile; then this reads again and promotes them.)
			tx.MustNotExist(waitlistKey(offeringID), store.ErrConflict)
			tx.HIncrBy(offeringKey(offeringID), fieldEnrolled, -1)
		default:
			if err := s.promote(ctx, tx, offeringID, head.Val()[0]); err != nil {
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				return nil, err
			}
		}
		_, err = tx.Commit(ctx)
		switch {
		case errors.Is(err, store.ErrConflict):
			continue // read again (a changed enrolment with a client etag is ABORTED there)
		case err != nil:
			return nil, err
		}
		return e, nil
	}
	return nil, status.Errorf(codes.Aborted, "the waitlist of %s kept changing while %s was withdrawn; retry", offeringName(offeringID), req.GetName())
}

// promote adds to tx the promotion of the waitlist's head, headID, to the
// seat being freed: on condition that it is still the head when the step
// lands, as read.
func (s *Service) promote(ctx context.Context, tx *store.Tx, offeringID, headID string) error {
	key := enrolmentKey(offeringID, headID)
	h := newEnrolment()
	if err := s.st.Get(ctx, key, h); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.ErrConflict
		}
		return err
	}
	if h.GetState() != waitlisted {
		return store.ErrConflict
	}
	tx.FirstIs(waitlistKey(offeringID), headID, store.ErrConflict)
	tx.EtagIs(key, h.GetEtag(), nil)
	now := timestamppb.New(s.now())
	h.State, h.PromoteTime, h.UpdateTime, h.WaitlistPosition = enrolled, now, now, 0
	if err := tx.Put(key, h); err != nil {
		return err
	}
	tx.SetIndex(key, enrolmentIndex.Entries(Keyspace, h))
	tx.ZRem(waitlistKey(offeringID), headID)
	tx.Emit("enrolment.promoted", h.GetName(), public(h))
	return nil
}
