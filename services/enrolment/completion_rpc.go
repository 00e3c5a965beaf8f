package enrolment

import (
	"context"
	"errors"
	"slices"
	"strings"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const completed = enrolmentv1.Enrolment_STATE_COMPLETED

// erased says a stored participant's personal data was erased. One stored
// before states existed is ACTIVE.
func erased(p *enrolmentv1.Participant) bool {
	return p.GetState() == enrolmentv1.Participant_STATE_ERASED
}

// CompleteEnrolment implements enrolmentv1.EnrolmentServiceServer.
//
// The step is conditioned on the enrolment's, the offering's and the
// participant's etags: a withdrawal (or another completion) racing with it
// changes the enrolment's, so exactly one of them lands and the other
// reads again and is refused. Attendance only grows, so what was checked
// of it stays true. The seat is no longer ENROLLED: the offering's enrolled
// count goes down in the same step, keeping it exact.
func (s *Service) CompleteEnrolment(ctx context.Context, req *enrolmentv1.CompleteEnrolmentRequest) (*enrolmentv1.Enrolment, error) {
	offeringID, id, err := parseEnrolmentName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := enrolmentKey(offeringID, id)
	for attempt := range 20 {
		backoff(ctx, attempt)
		pipe := s.rdb.Pipeline()
		fields := pipe.HGetAll(ctx, key)
		ob := pipe.HGet(ctx, offeringKey(offeringID), "pb")
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, s.st.Err(ctx, err)
		}
		eb, ok := fields.Val()["pb"]
		if !ok {
			return nil, apierr.NotFound(req.GetName())
		}
		e := newEnrolment()
		if err := s.unmarshal(ctx, key, []byte(eb), e); err != nil {
			return nil, err
		}
		if req.GetEtag() != "" && req.GetEtag() != e.GetEtag() {
			return nil, apierr.Aborted(req.GetName())
		}
		o := newOffering()
		if err := s.unmarshal(ctx, offeringKey(offeringID), []byte(ob.Val()), o); err != nil {
			return nil, err
		}
		participantID, _ := parseParticipantName("", e.GetParticipant())
		part, err := s.readParticipants(ctx, []string{e.GetParticipant()})
		if err != nil {
			return nil, err
		}

		var r refusal
		switch e.GetState() {
		case enrolled:
		case completed:
			r.add("ENROLMENT_STATE", e.GetName(), "%s is COMPLETED already (%s)", e.GetName(), e.GetResult())
		default:
			r.add("ENROLMENT_STATE", e.GetName(), "%s is %s; only an ENROLLED participant completes", e.GetName(), e.GetState())
		}
		if o.GetState() != offeringRunning && o.GetState() != offeringFinished {
			r.add("OFFERING_STATE", o.GetName(), "%s is %s; its participants complete while it is RUNNING or after it FINISHED", o.GetName(), o.GetState())
		}
		recs, err := s.attendanceOf(ctx, key, fields.Val())
		if err != nil {
			return nil, err
		}
		recorded := map[int]bool{}
		for _, rec := range recs {
			recorded[dateKey(rec.GetSessionDate())] = true
		}
		var missing []string
		today := dateKey(s.today())
		for _, ses := range o.GetSessions() {
			if k := dateKey(ses.GetDate()); k <= today && !recorded[k] {
				missing = append(missing, dateString(ses.GetDate()))
			}
		}
		if len(missing) > 0 {
			r.add("ATTENDANCE_RECORDED", e.GetName(), "attendance of %s is not recorded for the session(s) held on %s; record every session held first",
				e.GetName(), strings.Join(missing, ", "))
		}
		if len(part) == 1 && erased(part[0].p) {
			r.add("PARTICIPANT_ERASED", e.GetParticipant(), "%s was erased; nothing new is recorded about them", e.GetParticipant())
		}
		if err := r.err("cannot complete " + e.GetName()); err != nil {
			return nil, err
		}

		seen := e.GetEtag()
		now := timestamppb.New(s.now())
		e.State, e.Result, e.CompleteTime, e.UpdateTime = completed, req.GetResult(), now, now
		e.Skills = slices.Clone(o.GetSkills())
		tx := s.st.Tx()
		tx.EtagIs(key, seen, nil)
		tx.EtagIs(offeringKey(offeringID), o.GetEtag(), nil)
		if len(part) == 1 {
			tx.EtagIs(participantKey(participantID), part[0].p.GetEtag(), nil)
		}
		if err := tx.Put(key, e); err != nil {
			return nil, err
		}
		tx.SetIndex(key, enrolmentIndex.Entries(Keyspace, e))
		tx.HIncrBy(offeringKey(offeringID), fieldEnrolled, -1)
		tx.Emit("enrolment.completed", e.GetName(), public(e))
		_, err = tx.Commit(ctx)
		switch {
		case errors.Is(err, store.ErrConflict) && req.GetEtag() != "":
			return nil, apierr.Aborted(req.GetName())
		case errors.Is(err, store.ErrConflict):
			continue
		case err != nil:
			return nil, err
		}
		return e, nil
	}
	return nil, status.Errorf(codes.Aborted, "%s kept changing while it was completed; retry", req.GetName())
}
