package companies

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/sweden"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	planned   = companiesv1.CoachingSession_STATE_PLANNED
	held      = companiesv1.CoachingSession_STATE_HELD
	cancelled = companiesv1.CoachingSession_STATE_CANCELLED
)

func newSession() *companiesv1.CoachingSession { return &companiesv1.CoachingSession{} }

// CreateCoachingSession implements companiesv1.CompaniesServiceServer.
func (s *Service) CreateCoachingSession(ctx context.Context, req *companiesv1.CreateCoachingSessionRequest) (*companiesv1.CoachingSession, error) {
	companyID, err := parseCompanyName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	cs := proto.CloneOf(req.GetCoachingSession())
	var v apierr.Violations
	dates.Check(&v, "coaching_session.held_on", cs.GetHeldOn())
	if sweden.LooksLikePersonalIdentityNumber(cs.GetCoach()) {
		v.Add("coaching_session.coach", "must name the coach, never a personal identity number")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	id := req.GetCoachingSessionId()
	if id == "" {
		id = uuid.NewString()
	}
	now := timestamppb.New(s.now())
	cs.Name, cs.State, cs.CreateTime, cs.UpdateTime = sessionName(companyID, id), planned, now, now
	fingerprint := store.Fingerprint(req)
	for range 20 {
		c, err := s.loadCompany(ctx, companyID)
		if err != nil {
			return nil, err
		}
		tx := s.st.Tx()
		if req.GetRequestId() != "" {
			tx.Idempotent(idemKey("coaching", companyID, req.GetRequestId()), cs.GetName(), fingerprint)
		}
		tx.EtagIs(companyKey(companyID), c.GetEtag(), nil) // not while the company is deleted
		tx.MustNotExist(sessionKey(companyID, id), status.Errorf(codes.AlreadyExists, "%s already exists", cs.GetName()))
		tx.MustNotExist(heldKey(companyID, cs.GetConversation()), alreadyHeld(c.GetName(), cs.GetConversation()))
		if err := tx.Put(sessionKey(companyID, id), cs); err != nil {
			return nil, err
		}
		tx.SetIndex(sessionKey(companyID, id), sessionIndex.Entries(Keyspace, cs))
		tx.SAdd(plannedKey(companyID), id)
		tx.Emit("coaching_session.created", cs.GetName(), cs)
		replay, err := tx.Commit(ctx)
		switch {
		case errors.Is(err, store.ErrConflict):
			continue
		case err != nil:
			return nil, err
		case replay != nil:
			return s.GetCoachingSession(ctx, &companiesv1.GetCoachingSessionRequest{Name: replay.Name})
		}
		return cs, nil
	}
	return nil, status.Errorf(codes.Aborted, "%s kept changing while the session was planned; retry", req.GetParent())
}

// GetCoachingSession implements companiesv1.CompaniesServiceServer.
func (s *Service) GetCoachingSession(ctx context.Context, req *companiesv1.GetCoachingSessionRequest) (*companiesv1.CoachingSession, error) {
	c, id, err := parseSessionName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	cs := newSession()
	if err := s.st.Get(ctx, sessionKey(c, id), cs); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(req.GetName())
		}
		return nil, err
	}
	return cs, nil
}

// ListCoachingSessions implements companiesv1.CompaniesServiceServer.
func (s *Service) ListCoachingSessions(ctx context.Context, req *companiesv1.ListCoachingSessionsRequest) (*companiesv1.ListCoachingSessionsResponse, error) {
	id, err := parseCompanyName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if _, err := s.loadCompany(ctx, id); err != nil {
		return nil, err
	}
	page, err := s.sessionLister().List(ctx, listing.Request{Method: "ListCoachingSessions", Parent: req.GetParent(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(), Where: map[string]string{"parent": req.GetParent()}})
	if err != nil {
		return nil, err
	}
	return &companiesv1.ListCoachingSessionsResponse{CoachingSessions: page.Items, NextPageToken: page.Next}, nil
}

// wrongSessionState is FAILED_PRECONDITION naming the session's state.
func wrongSessionState(cs *companiesv1.CoachingSession, verb string) error {
	st := status.Newf(codes.FailedPrecondition, "cannot %s %s: it is %s; that needs STATE_PLANNED", verb, cs.GetName(), cs.GetState())
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: "STATE", Subject: cs.GetName(), Description: "current state " + cs.GetState().String()}}}); err == nil {
		st = d
	}
	return st.Err()
}

// HoldCoachingSession implements companiesv1.CompaniesServiceServer. The
// order of the conversations is checked inside the write: conversation N
// needs N − 1's held record, and N may be held once.
func (s *Service) HoldCoachingSession(ctx context.Context, req *companiesv1.HoldCoachingSessionRequest) (*companiesv1.CoachingSession, error) {
	companyID, id, err := parseSessionName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	var v apierr.Violations
	dates.Check(&v, "held_on", req.GetHeldOn())
	today := dates.Of(s.now())
	if dates.Valid(req.GetHeldOn()) && dates.Compare(req.GetHeldOn(), today) > 0 {
		v.Add("held_on", "%s is in the future: a conversation is held once it has taken place", dates.String(req.GetHeldOn()))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	key := sessionKey(companyID, id)
	return store.Update(ctx, s.st, key, req.GetName(), req.GetEtag(), newSession, func(cs *companiesv1.CoachingSession, tx *store.Tx) error {
		if cs.GetState() != planned {
			return wrongSessionState(cs, "hold")
		}
		n := cs.GetConversation()
		company := companyName(companyID)
		if n > 1 {
			tx.MustExist(heldKey(companyID, n-1), missingConversation(company, n))
		}
		tx.MustNotExist(heldKey(companyID, n), alreadyHeld(company, n))
		switch {
		case req.GetHeldOn() != nil:
			cs.HeldOn = req.GetHeldOn()
		case cs.GetHeldOn() == nil || dates.Compare(cs.GetHeldOn(), today) > 0:
			cs.HeldOn = today
		}
		if req.GetNotes() != "" {
			cs.Notes = req.GetNotes()
		}
		if len(req.GetAgreedActions()) > 0 {
			cs.AgreedActions = req.GetAgreedActions()
		}
		cs.State, cs.UpdateTime = held, timestamppb.New(s.now())
		if err := tx.Put(key, cs); err != nil {
			return err
		}
		tx.HSet(heldKey(companyID, n), "session", id)
		tx.SRem(plannedKey(companyID), id)
		tx.SetIndex(key, sessionIndex.Entries(Keyspace, cs))
		tx.Emit("coaching_session.held", cs.GetName(), cs)
		return nil
	})
}

// alreadyHeld is ALREADY_EXISTS for a conversation that has been held.
func alreadyHeld(company string, n int32) error {
	return status.Errorf(codes.AlreadyExists, "conversation %d with %s has already been held; each conversation is held once, plan the next one", n, company)
}

// missingConversation is FAILED_PRECONDITION naming the conversation that
// must be held first.
func missingConversation(company string, n int32) error {
	st := status.Newf(codes.FailedPrecondition, "conversation %d with %s cannot be held before conversation %d has been", n, company, n-1)
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: "ORDER", Subject: company, Description: fmt.Sprintf("conversation %d has not been held", n-1)}}}); err == nil {
		st = d
	}
	return st.Err()
}

// CancelCoachingSession implements companiesv1.CompaniesServiceServer.
func (s *Service) CancelCoachingSession(ctx context.Context, req *companiesv1.CancelCoachingSessionRequest) (*companiesv1.CoachingSession, error) {
	companyID, id, err := parseSessionName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := sessionKey(companyID, id)
	return store.Update(ctx, s.st, key, req.GetName(), req.GetEtag(), newSession, func(cs *companiesv1.CoachingSession, tx *store.Tx) error {
		if cs.GetState() != planned {
			return wrongSessionState(cs, "cancel")
		}
		cs.State, cs.StateReason, cs.UpdateTime = cancelled, req.GetReason(), timestamppb.New(s.now())
		if err := tx.Put(key, cs); err != nil {
			return err
		}
		tx.SRem(plannedKey(companyID), id)
		tx.SetIndex(key, sessionIndex.Entries(Keyspace, cs))
		tx.Emit("coaching_session.cancelled", cs.GetName(), cs)
		return nil
	})
}
