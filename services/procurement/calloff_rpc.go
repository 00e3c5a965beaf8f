package procurement

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/google/uuid"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/sweden"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	offered    = procurementv1.CallOff_STATE_OFFERED
	tendering  = procurementv1.CallOff_STATE_TENDERING
	awarded    = procurementv1.CallOff_STATE_AWARDED
	noProvider = procurementv1.CallOff_STATE_NO_PROVIDER
	cancelled  = procurementv1.CallOff_STATE_CANCELLED
)

// lotOf is the lot of a with id, or nil.
func lotOf(a *agreement, id string) *procurementv1.Lot {
	for _, l := range a.GetLots() {
		if l.GetId() == id {
			return l
		}
	}
	return nil
}

func lotIDs(a *agreement) string {
	ids := make([]string, len(a.GetLots()))
	for i, l := range a.GetLots() {
		ids[i] = l.GetId()
	}
	return strings.Join(ids, ", ")
}

// awardable says whether value (öre) can be awarded under a now, given
// what is already awarded: the same conditions the award's atomic step
// enforces, checked first to refuse early and clearly.
func (s *Service) awardable(a *agreement, awardedOre, value int64) error {
	switch {
	case a.GetState() != agreementActive:
		return precondition("STATE", a.GetName(), "%s is %s; call-offs are awarded only under an ACTIVE framework agreement",
			a.GetName(), a.GetState())
	case s.ended(a):
		return precondition("VALIDITY", a.GetName(), "%s expired: its last day was %s; no call-off can be awarded under it",
			a.GetName(), dates.String(a.GetValidUntil()))
	case s.today() < dates.Key(a.GetValidFrom()):
		return precondition("VALIDITY", a.GetName(), "%s is valid from %s; no call-off can be awarded under it before then",
			a.GetName(), dates.String(a.GetValidFrom()))
	case awardedOre+value > ore(a.GetCeilingValue()):
		return ceilingError(a, awardedOre, value)
	}
	return nil
}

// ceilingError is the refusal of an award that would take the agreement
// past its ceiling, naming the agreement and what remains.
func ceilingError(a *agreement, awardedOre, value int64) error {
	remaining := max(ore(a.GetCeilingValue())-awardedOre, 0)
	return precondition("CEILING", a.GetName(), "%s has %s left of its ceiling of %s; a call-off of %s would exceed it",
		a.GetName(), formatSEK(remaining), formatSEK(ore(a.GetCeilingValue())), formatSEK(value))
}

// approvedNeed asks the councils service for the need, on the caller's
// behalf, and requires it to be APPROVED.
func (s *Service) approvedNeed(ctx context.Context, name, municipality string) (*councilsv1.CompetenceNeed, error) {
	n, err := councilsv1.NewCouncilsServiceClient(s.councils).GetNeed(ctx, &councilsv1.GetNeedRequest{Name: name})
	if err != nil {
		return nil, s.councils.Err(ctx, err, peer.On(codes.NotFound, apierr.Field("call_off.need", "%s does not exist", name)))
	}
	if n.GetState() != councilsv1.CompetenceNeed_STATE_APPROVED {
		return nil, precondition("NEED_STATE", name, "%s is %s; training is called off only for an APPROVED need", name, n.GetState())
	}
	if ms := n.GetMunicipalities(); len(ms) > 0 && !slices.Contains(ms, municipality) {
		return nil, apierr.Field("call_off.specification.municipality", "%s is not among the need's municipalities (%s)",
			municipality, strings.Join(ms, ", "))
	}
	return n, nil
}

// CreateCallOff implements procurementv1.ProcurementServiceServer.
func (s *Service) CreateCallOff(ctx context.Context, req *procurementv1.CreateCallOffRequest) (*procurementv1.CallOff, error) {
	in := req.GetCallOff()
	spec := in.GetSpecification()
	var v apierr.Violations
	value := checkSEK(&v, "call_off.value", in.GetValue())
	if !sweden.IsMunicipality(spec.GetMunicipality()) {
		v.Add("call_off.specification.municipality", "%q is not an SCB municipality code", spec.GetMunicipality())
	}
	if checkDate(&v, "call_off.specification.latest_start", spec.GetLatestStart()) && dates.Key(spec.GetLatestStart()) < s.today() {
		v.Add("call_off.specification.latest_start", "%s is in the past", dates.String(spec.GetLatestStart()))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	agreementID, err := parseAgreementName("call_off.framework_agreement", in.GetFrameworkAgreement())
	if err != nil {
		return nil, err
	}
	id := req.GetCallOffId()
	if id == "" {
		id = uuid.NewString()
	}
	fingerprint := store.Fingerprint(req)
	if req.GetRequestId() != "" {
		// A retry returns the first call-off, even once its need has moved
		// on (the award makes it IN_PROCUREMENT) and the check below would
		// refuse it.
		replay, err := s.st.Replayed(ctx, idemKey("calloff", req.GetRequestId()), fingerprint)
		if err != nil {
			return nil, err
		}
		if replay != nil {
			return s.GetCallOff(ctx, &procurementv1.GetCallOffRequest{Name: replay.Name})
		}
	}
	var need *councilsv1.CompetenceNeed
	// Retried when the agreement changes (is terminated, say) between
	// reading it and writing the call-off.
	for range 20 {
		a := newAgreement()
		if err := s.st.Get(ctx, agreementKey(agreementID), a); errors.Is(err, store.ErrNotFound) {
			return nil, apierr.Field("call_off.framework_agreement", "%s does not exist", in.GetFrameworkAgreement())
		} else if err != nil {
			return nil, err
		}
		lot := lotOf(a, in.GetLot())
		if lot == nil {
			return nil, apierr.Field("call_off.lot", "%s has no lot %q (its lots: %s)", a.GetName(), in.GetLot(), lotIDs(a))
		}
		method := in.GetAwardMethod()
		switch {
		case method == procurementv1.AwardMethod_AWARD_METHOD_UNSPECIFIED && a.GetAwardMethod() == eitherMethod:
			return nil, apierr.Field("call_off.award_method", "is required: %s allows both AWARD_METHOD_RANK_ORDER and AWARD_METHOD_MINI_COMPETITION", a.GetName())
		case method == procurementv1.AwardMethod_AWARD_METHOD_UNSPECIFIED:
			method = a.GetAwardMethod()
		case !allows(a.GetAwardMethod(), method):
			return nil, apierr.Field("call_off.award_method", "%s allows only %s", a.GetName(), a.GetAwardMethod())
		}
		switch {
		case method == miniCompetition && in.GetBidDeadline() == nil:
			return nil, apierr.Field("call_off.bid_deadline", "is required for a mini-competition")
		case method == miniCompetition && !in.GetBidDeadline().AsTime().After(s.now()):
			return nil, apierr.Field("call_off.bid_deadline", "%s is not in the future", in.GetBidDeadline().AsTime().Format("2006-01-02T15:04:05Z07:00"))
		case method == rankOrder && in.GetBidDeadline() != nil:
			return nil, apierr.Field("call_off.bid_deadline", "only a mini-competition has a bid deadline")
		}
		awardedOre, err := s.awarded(ctx, agreementID)
		if err != nil {
			return nil, err
		}
		if err := s.awardable(a, awardedOre, value); err != nil {
			return nil, err
		}
		if need == nil {
			// Asked once, after the checks of our own data and before
			// anything is written: the skills service about the skills to
			// be trained, then the councils service about the need.
			if err := s.checkSkills(ctx, &v, callOffSkills(in, "call_off"), skillAnswers{}); err != nil {
				return nil, err
			}
			if err := v.Err(); err != nil {
				return nil, err
			}
			if need, err = s.approvedNeed(ctx, in.GetNeed(), spec.GetMunicipality()); err != nil {
				return nil, err
			}
		}

		c := proto.CloneOf(in)
		now := timestamppb.New(s.now())
		c.Name, c.CreateTime, c.UpdateTime, c.AwardMethod = callOffName(id), now, now, method
		c.Title, c.RankedProviders = need.GetTitle(), slices.Clone(lot.GetProviders())
		c.StateReason, c.BidCount, c.WinningBid, c.AwardValue, c.AwardTime = "", 0, "", nil, nil
		if method == rankOrder {
			c.State, c.Provider = offered, c.RankedProviders[0]
			c.InvitedProviders = []string{c.Provider}
			c.Offers = []*procurementv1.Offer{{Provider: c.Provider, Rank: 1, Outcome: pending, OfferTime: now}}
		} else {
			c.State, c.Provider, c.Offers = tendering, "", nil
			c.InvitedProviders = slices.Clone(c.RankedProviders)
		}

		tx := s.st.Tx()
		if req.GetRequestId() != "" {
			tx.Idempotent(idemKey("calloff", req.GetRequestId()), c.GetName(), fingerprint)
		}
		// The agreement as read (ACTIVE, its dates): a change meanwhile
		// makes this read it again.
		tx.EtagIs(agreementKey(agreementID), a.GetEtag(), nil)
		tx.MustNotExist(callOffKey(id), status.Errorf(codes.AlreadyExists, "%s already exists", c.GetName()))
		if err := tx.Put(callOffKey(id), c); err != nil {
			return nil, err
		}
		s.indexCallOff(tx, c)
		tx.Emit("call_off.created", c.GetName(), c)
		replay, err := tx.Commit(ctx)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if replay != nil {
			return s.GetCallOff(ctx, &procurementv1.GetCallOffRequest{Name: replay.Name})
		}
		return c, nil
	}
	return nil, status.Errorf(codes.Aborted, "%s kept changing while the call-off was created; retry", in.GetFrameworkAgreement())
}

// GetCallOff implements procurementv1.ProcurementServiceServer.
func (s *Service) GetCallOff(ctx context.Context, req *procurementv1.GetCallOffRequest) (*procurementv1.CallOff, error) {
	id, err := parseCallOffName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	c := newCallOff()
	if err := s.st.Get(ctx, callOffKey(id), c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(req.GetName())
		}
		return nil, err
	}
	return c, nil
}

// ListCallOffs implements procurementv1.ProcurementServiceServer.
func (s *Service) ListCallOffs(ctx context.Context, req *procurementv1.ListCallOffsRequest) (*procurementv1.ListCallOffsResponse, error) {
	lr := listing.Request{
		Method: "ListCallOffs", Parent: req.GetProvider(), Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	}
	if p := req.GetProvider(); p != "" && p != "providers/-" {
		lr.Where = map[string]string{"invited": p}
	}
	page, err := s.callOffLister().List(ctx, lr)
	if err != nil {
		return nil, err
	}
	return &procurementv1.ListCallOffsResponse{CallOffs: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

// updateCallOff is store.Update for a call-off; a refusal of the award's
// ceiling check becomes the error naming what remains, read afresh.
func (s *Service) updateCallOff(ctx context.Context, name, etag string, change func(cur *callOff, tx *store.Tx) error) (*callOff, error) {
	id, err := parseCallOffName("name", name)
	if err != nil {
		return nil, err
	}
	c, err := store.Update(ctx, s.st, callOffKey(id), name, etag, newCallOff, change)
	var refused *ceilingCheck
	if errors.As(err, &refused) {
		return nil, s.ceilingRefusal(ctx, refused)
	}
	return c, err
}

// CancelCallOff implements procurementv1.ProcurementServiceServer.
func (s *Service) CancelCallOff(ctx context.Context, req *procurementv1.CancelCallOffRequest) (*procurementv1.CallOff, error) {
	return s.updateCallOff(ctx, req.GetName(), req.GetEtag(), func(c *callOff, tx *store.Tx) error {
		if c.GetState() != offered && c.GetState() != tendering {
			return wrongState(c.GetName(), "cancel", c.GetState().String(), offered.String(), tendering.String())
		}
		now := timestamppb.New(s.now())
		if o := pendingOffer(c); o != nil {
			o.Outcome, o.AnswerTime = procurementv1.Offer_OUTCOME_WITHDRAWN, now
		}
		c.State, c.StateReason, c.UpdateTime = cancelled, req.GetReason(), now
		return s.putCallOff(tx, c, "call_off.cancelled")
	})
}

func (s *Service) putCallOff(tx *store.Tx, c *callOff, event string) error {
	id, _ := parseCallOffName("", c.GetName())
	if err := tx.Put(callOffKey(id), c); err != nil {
		return err
	}
	s.indexCallOff(tx, c)
	tx.Emit(event, c.GetName(), c)
	return nil
}
