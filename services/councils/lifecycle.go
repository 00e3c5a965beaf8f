package councils

import (
	"context"
	"fmt"
	"slices"
	"strings"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type state = councilsv1.CompetenceNeed_State

const (
	draft         = councilsv1.CompetenceNeed_STATE_DRAFT
	submitted     = councilsv1.CompetenceNeed_STATE_SUBMITTED
	approved      = councilsv1.CompetenceNeed_STATE_APPROVED
	rejected      = councilsv1.CompetenceNeed_STATE_REJECTED
	inProcurement = councilsv1.CompetenceNeed_STATE_IN_PROCUREMENT
	fulfilled     = councilsv1.CompetenceNeed_STATE_FULFILLED
	closed        = councilsv1.CompetenceNeed_STATE_CLOSED
)

// A transition is one custom method of the lifecycle.
type transition struct {
	verb  string  // for messages: "approve"
	event string  // "need.approved"
	from  []state // states it may start from
	to    state
}

var (
	submitT  = transition{"submit", "need.submitted", []state{draft}, submitted}
	approveT = transition{"approve", "need.approved", []state{submitted}, approved}
	rejectT  = transition{"reject", "need.rejected", []state{submitted}, rejected}
	procureT = transition{"start procurement of", "need.procurement_started", []state{approved}, inProcurement}
	fulfilT  = transition{"fulfil", "need.fulfilled", []state{inProcurement}, fulfilled}
	closeT   = transition{"close", "need.closed", []state{draft, submitted, approved, inProcurement, fulfilled}, closed}
)

// wrongState is FAILED_PRECONDITION naming the need's current state, with a
// PreconditionFailure detail for programs.
func wrongState(n *councilsv1.CompetenceNeed, verb string, allowed ...state) error {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = a.String()
	}
	desc := fmt.Sprintf("cannot %s %s: it is %s; that needs %s", verb, n.GetName(), n.GetState(), strings.Join(names, " or "))
	st := status.New(codes.FailedPrecondition, desc)
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: "STATE", Subject: n.GetName(), Description: "current state " + n.GetState().String()},
	}}); err == nil {
		st = d
	}
	return st.Err()
}

// move runs t on the need called name: the state is checked against the
// need as stored when the write lands (its etag), so of many concurrent
// calls exactly one moves the need and the rest see the new state.
func (s *Service) move(ctx context.Context, name, etag string, t transition, edit func(n *councilsv1.CompetenceNeed) error) (*councilsv1.CompetenceNeed, error) {
	councilID, id, err := parseNeedName("name", name)
	if err != nil {
		return nil, err
	}
	key := needKey(councilID, id)
	return store.Update(ctx, s.st, key, name, etag, newNeed, func(n *councilsv1.CompetenceNeed, tx *store.Tx) error {
		if !slices.Contains(t.from, n.GetState()) {
			return wrongState(n, t.verb, t.from...)
		}
		// The need is listed by its council's sector and municipalities:
		// index it with the council as it is when the write lands.
		council, err := s.loadCouncil(ctx, councilID)
		if status.Code(err) == codes.NotFound {
			council, err = nil, nil
			tx.MustNotExist(councilKey(councilID), store.ErrConflict)
		} else if err == nil {
			tx.EtagIs(councilKey(councilID), council.GetEtag(), nil)
		}
		if err != nil {
			return err
		}
		if edit != nil {
			if err := edit(n); err != nil {
				return err
			}
		}
		now := timestamppb.New(s.now())
		n.State, n.UpdateTime = t.to, now
		if t.to == submitted {
			n.SubmitTime = now
		}
		if t.to == rejected || t.to == closed {
			tx.SRem(openNeedsKey(councilID), id) // no longer holds the council back from deletion
		}
		if err := tx.Put(key, n); err != nil {
			return err
		}
		s.indexNeed(tx, n, council)
		tx.Emit(t.event, n.GetName(), n)
		return nil
	})
}

// SubmitNeed implements councilsv1.CouncilsServiceServer.
func (s *Service) SubmitNeed(ctx context.Context, req *councilsv1.SubmitNeedRequest) (*councilsv1.CompetenceNeed, error) {
	return s.move(ctx, req.GetName(), req.GetEtag(), submitT, func(n *councilsv1.CompetenceNeed) error {
		if d := n.GetNeededBy(); d != nil && s.beforeToday(d) {
			return apierr.FailedPrecondition("cannot submit %s: needed_by %04d-%02d-%02d is in the past; update it first",
				n.GetName(), d.GetYear(), d.GetMonth(), d.GetDay())
		}
		n.StateReason = ""
		return nil
	})
}

// ApproveNeed implements councilsv1.CouncilsServiceServer.
func (s *Service) ApproveNeed(ctx context.Context, req *councilsv1.ApproveNeedRequest) (*councilsv1.CompetenceNeed, error) {
	return s.move(ctx, req.GetName(), req.GetEtag(), approveT, func(n *councilsv1.CompetenceNeed) error {
		if req.GetPriority() != councilsv1.Priority_PRIORITY_UNSPECIFIED {
			n.Priority = req.GetPriority()
		}
		n.StateReason = req.GetReason()
		return nil
	})
}

// RejectNeed implements councilsv1.CouncilsServiceServer.
func (s *Service) RejectNeed(ctx context.Context, req *councilsv1.RejectNeedRequest) (*councilsv1.CompetenceNeed, error) {
	return s.move(ctx, req.GetName(), req.GetEtag(), rejectT, func(n *councilsv1.CompetenceNeed) error {
		n.StateReason = req.GetReason()
		return nil
	})
}

// StartNeedProcurement implements councilsv1.CouncilsServiceServer.
func (s *Service) StartNeedProcurement(ctx context.Context, req *councilsv1.StartNeedProcurementRequest) (*councilsv1.CompetenceNeed, error) {
	return s.move(ctx, req.GetName(), req.GetEtag(), procureT, nil)
}

// FulfilNeed implements councilsv1.CouncilsServiceServer.
func (s *Service) FulfilNeed(ctx context.Context, req *councilsv1.FulfilNeedRequest) (*councilsv1.CompetenceNeed, error) {
	return s.move(ctx, req.GetName(), req.GetEtag(), fulfilT, func(n *councilsv1.CompetenceNeed) error {
		n.StateReason = req.GetReason()
		return nil
	})
}

// CloseNeed implements councilsv1.CouncilsServiceServer.
func (s *Service) CloseNeed(ctx context.Context, req *councilsv1.CloseNeedRequest) (*councilsv1.CompetenceNeed, error) {
	return s.move(ctx, req.GetName(), req.GetEtag(), closeT, func(n *councilsv1.CompetenceNeed) error {
		n.StateReason = req.GetReason()
		return nil
	})
}
