package enrolment

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Outcomes live in one hash per participant (outcomeKey), one field per
// project and timing ("<project id>-exit", "<project id>-six-months") →
// ParticipantOutcome bytes: what the project report reads. Beside it,
// outcomeVersionKey holds a version that every outcome write of the
// participant changes, so that the rule between a participant's exit and
// six-month outcomes is checked on what is stored when the step lands
// (two outcomes written at once cannot together break it).
func outcomeKey(participant string) string { return Keyspace.Key("outcome", participant) }

func outcomeVersionKey(participant string) string { return Keyspace.Key("outcomever", participant) }

const (
	exitTiming = enrolmentv1.OutcomeTiming_OUTCOME_TIMING_EXIT
	sixMonths  = enrolmentv1.OutcomeTiming_OUTCOME_TIMING_SIX_MONTHS
)

// outcomeField is the outcome hash's field, and the last part of the
// outcome's name, of a project id and timing.
func outcomeField(projectID string, timing enrolmentv1.OutcomeTiming) string {
	if timing == sixMonths {
		return projectID + "-six-months"
	}
	return projectID + "-exit"
}

// sixMonthsAfter is the same day six months after d, or the month's last
// day when it has no such day (31 August → 28 or 29 February).
func sixMonthsAfter(d *date.Date) *date.Date {
	y, m := int(d.GetYear()), int(d.GetMonth())+6
	if m > 12 {
		y, m = y+1, m-12
	}
	last := time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	return &date.Date{Year: int32(y), Month: int32(m), Day: min(d.GetDay(), int32(last))}
}

// participantEnrolments is every enrolment of a participant, from the
// participant index.
func (s *Service) participantEnrolments(ctx context.Context, participant string) ([]*enrolmentv1.Enrolment, error) {
	var out []*enrolmentv1.Enrolment
	token := ""
	for {
		page, err := s.enrolmentLister().List(ctx, listing.Request{
			Method: "participantEnrolments", Parent: participant, PageSize: 1000, PageToken: token,
			Where: map[string]string{"participant": participant},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if token = page.Next; token == "" {
			return out, nil
		}
	}
}

// RecordOutcome implements enrolmentv1.EnrolmentServiceServer.
//
// The participant must have an ENROLLED, COMPLETED or WITHDRAWN enrolment
// in the project (a place on the waitlist is not taking part; a
// withdrawal is an exit whose outcome the funder asks for too), and must
// not be erased. A six-month outcome is dated at least six months after
// the exit outcome or, without one, after the participant's last
// completion in the project (without either there is nothing to count
// from: refused); an exit outcome may not be dated later than six months
// before a six-month outcome already recorded.
func (s *Service) RecordOutcome(ctx context.Context, req *enrolmentv1.RecordOutcomeRequest) (*enrolmentv1.ParticipantOutcome, error) {
	participantID, err := parseParticipantName("participant", req.GetParticipant())
	if err != nil {
		return nil, err
	}
	projectID, err := parseProjectName("project", req.GetProject())
	if err != nil {
		return nil, err
	}
	var v apierr.Violations
	checkDate(&v, "date", req.GetDate())
	if validDate(req.GetDate()) && dateKey(req.GetDate()) > dateKey(s.today()) {
		v.Add("date", "%s is after today (%s): an outcome is recorded once it holds", dateString(req.GetDate()), dateString(s.today()))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	field := outcomeField(projectID, req.GetTiming())
	otherField := outcomeField(projectID, exitTiming)
	if req.GetTiming() == exitTiming {
		otherField = outcomeField(projectID, sixMonths)
	}
	name := req.GetParticipant() + "/outcomes/" + field
	for attempt := range 20 {
		backoff(ctx, attempt)
		pipe := s.rdb.Pipeline()
		// The version first: a pipeline is not atomic, so an outcome written
		// between the two reads must leave us holding the older version
		// (and the commit then conflicts), never the newer one with the
		// older outcomes.
		ver := pipe.HGet(ctx, outcomeVersionKey(participantID), "etag")
		pb := pipe.HGet(ctx, participantKey(participantID), "pb")
		proj := pipe.Exists(ctx, projectKey(projectID))
		outs := pipe.HMGet(ctx, outcomeKey(participantID), field, otherField)
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, s.st.Err(ctx, err)
		}
		b, err := pb.Bytes()
		if errors.Is(err, redis.Nil) {
			return nil, apierr.NotFound(req.GetParticipant())
		}
		p := newParticipant()
		if err := s.unmarshal(ctx, participantKey(participantID), b, p); err != nil {
			return nil, err
		}
		if proj.Val() == 0 {
			return nil, apierr.Field("project", "%s does not exist", req.GetProject())
		}
		stored := make([]*enrolmentv1.ParticipantOutcome, 2) // this timing's, the other's
		for i, raw := range outs.Val() {
			if b, ok := raw.(string); ok {
				stored[i] = &enrolmentv1.ParticipantOutcome{}
				if err := s.unmarshal(ctx, outcomeKey(participantID), []byte(b), stored[i]); err != nil {
					return nil, err
				}
			}
		}
		all, err := s.participantEnrolments(ctx, req.GetParticipant())
		if err != nil {
			return nil, err
		}
		var inProject []*enrolmentv1.Enrolment
		var lastCompletion *date.Date
		took := false
		for _, e := range all {
			if e.GetProject() != req.GetProject() {
				continue
			}
			inProject = append(inProject, e)
			switch e.GetState() {
			case enrolled, withdrawn:
				took = true
			case completed:
				took = true
				if d := dates.Of(e.GetCompleteTime().AsTime()); lastCompletion == nil || dateKey(d) > dateKey(lastCompletion) {
					lastCompletion = d
				}
			}
		}

		var r refusal
		if erased(p) {
			r.add("PARTICIPANT_ERASED", p.GetName(), "%s was erased; nothing new is recorded about them", p.GetName())
		}
		if !took {
			r.add("ENROLMENT_IN_PROJECT", p.GetName(), "%s has no enrolment in %s (enrolled, completed or withdrawn; a place on the waitlist is not taking part)",
				p.GetName(), req.GetProject())
		}
		if req.GetTiming() == sixMonths {
			from, what := lastCompletion, "their last completion in "+req.GetProject()
			if exit := stored[1]; exit != nil {
				from, what = exit.GetDate(), "their exit outcome"
			}
			switch {
			case from == nil && took:
				r.add("SIX_MONTHS_AFTER_EXIT", name, "%s has neither an exit outcome nor a completion in %s to count six months from; record the exit outcome first",
					p.GetName(), req.GetProject())
			case from != nil && dateKey(req.GetDate()) < dateKey(sixMonthsAfter(from)):
				r.add("SIX_MONTHS_AFTER_EXIT", name, "a six-month outcome dated %s is less than six months after %s (%s); it may be dated %s at the earliest",
					dateString(req.GetDate()), what, dateString(from), dateString(sixMonthsAfter(from)))
			}
		} else if six := stored[1]; six != nil && dateKey(six.GetDate()) < dateKey(sixMonthsAfter(req.GetDate())) {
			r.add("SIX_MONTHS_AFTER_EXIT", name, "the six-month outcome %s is dated %s, less than six months after an exit dated %s; correct it first",
				six.GetName(), dateString(six.GetDate()), dateString(req.GetDate()))
		}
		if err := r.err("cannot record the outcome " + name); err != nil {
			return nil, err
		}

		now := timestamppb.New(s.now())
		out := &enrolmentv1.ParticipantOutcome{Name: name, Project: req.GetProject(), Timing: req.GetTiming(), Outcome: req.GetOutcome(),
			Date: req.GetDate(), CreateTime: now, UpdateTime: now, Etag: store.NewEtag()}
		event := "outcome.recorded"
		if prev := stored[0]; prev != nil {
			out.CreateTime, event = prev.GetCreateTime(), "outcome.updated"
		}
		b, err = deterministic.Marshal(out)
		if err != nil {
			return nil, err
		}
		tx := s.st.Tx()
		tx.EtagIs(participantKey(participantID), p.GetEtag(), nil)
		if v, err := ver.Result(); err == nil {
			tx.EtagIs(outcomeVersionKey(participantID), v, nil)
		} else {
			tx.MustNotExist(outcomeVersionKey(participantID), store.ErrConflict)
		}
		for _, e := range inProject { // the completion counted from, the enrolment that lets it be recorded
			o, id, _ := parseEnrolmentName("", e.GetName())
			tx.EtagIs(enrolmentKey(o, id), e.GetEtag(), nil)
		}
		tx.HSet(outcomeKey(participantID), field, b)
		factField, factValue := outcomeFact(participantID, req.GetTiming(), req.GetOutcome())
		tx.HSet(factsKey(projectID), factField, factValue)
		tx.HSet(outcomeVersionKey(participantID), "etag", store.NewEtag())
		tx.Emit(event, name, out)
		if _, err := tx.Commit(ctx); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, status.Errorf(codes.Aborted, "the outcomes or enrolments of %s kept changing; retry", req.GetParticipant())
}

// ListParticipantOutcomes implements enrolmentv1.EnrolmentServiceServer.
func (s *Service) ListParticipantOutcomes(ctx context.Context, req *enrolmentv1.ListParticipantOutcomesRequest) (*enrolmentv1.ListParticipantOutcomesResponse, error) {
	participantID, err := parseParticipantName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	exists := pipe.Exists(ctx, participantKey(participantID))
	all := pipe.HGetAll(ctx, outcomeKey(participantID))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.st.Err(ctx, err)
	}
	if exists.Val() == 0 {
		return nil, apierr.NotFound(req.GetParent())
	}
	out := make([]*enrolmentv1.ParticipantOutcome, 0, len(all.Val()))
	for _, raw := range all.Val() {
		o := &enrolmentv1.ParticipantOutcome{}
		if err := s.unmarshal(ctx, outcomeKey(participantID), []byte(raw), o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := strings.Compare(out[i].GetProject(), out[j].GetProject()); c != 0 {
			return c < 0
		}
		return out[i].GetTiming() < out[j].GetTiming()
	})
	return &enrolmentv1.ListParticipantOutcomesResponse{Outcomes: out}, nil
}
