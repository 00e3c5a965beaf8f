package procurement

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"

	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	pending  = procurementv1.Offer_OUTCOME_PENDING
	accepted = procurementv1.Offer_OUTCOME_ACCEPTED
	declined = procurementv1.Offer_OUTCOME_DECLINED
)

// ceilingCheck is the error the award's ceiling check fails with inside
// the atomic step; updateCallOff turns it into the refusal naming what
// remains, read after the step.
type ceilingCheck struct {
	agreement *agreement
	value     int64
}

func (c *ceilingCheck) Error() string { return "the award would exceed the agreement's ceiling" }

func (s *Service) ceilingRefusal(ctx context.Context, c *ceilingCheck) error {
	total, err := s.awarded(ctx, agreementID(c.agreement))
	if err != nil {
		return err
	}
	return ceilingError(c.agreement, total, c.value)
}

// awardIn adds the award of c for value öre to tx, which must be the write
// that moves c to AWARDED. In that one atomic step:
//
//   - the agreement is as read here (its etag): ACTIVE, with the validity
//     dates judged below; an ACTIVE agreement's dates cannot change, and a
//     termination or expiry meanwhile changes its etag and makes the award
//     read again;
//   - the running total awarded under it (fieldAwarded) plus value is at
//     most the ceiling, and is raised by value.
//
// So of many concurrent awards exactly those that fit are awarded, and
// awarded_value is exact; nothing is decided by a read in Go.
func (s *Service) awardIn(ctx context.Context, tx *store.Tx, c *callOff, value int64) error {
	id, err := parseAgreementName("framework_agreement", c.GetFrameworkAgreement())
	if err != nil {
		return err
	}
	a := newAgreement()
	if err := s.st.Get(ctx, agreementKey(id), a); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return status.Errorf(codes.DataLoss, "%s of %s is missing", c.GetFrameworkAgreement(), c.GetName())
		}
		return err
	}
	total, err := s.awarded(ctx, id)
	if err != nil {
		return err
	}
	if err := s.awardable(a, total, value); err != nil {
		return err
	}
	tx.EtagIs(agreementKey(id), a.GetEtag(), nil)
	tx.AtMost(agreementKey(id), fieldAwarded, value, ore(a.GetCeilingValue()), &ceilingCheck{agreement: a, value: value})
	tx.HIncrBy(agreementKey(id), fieldAwarded, value)
	s.dequeue(tx, c.GetNeed())
	now := timestamppb.New(s.now())
	c.State, c.StateReason, c.AwardValue, c.AwardTime, c.UpdateTime = awarded, "", sek(value), now, now
	return nil
}

// pendingOffer is the offer of c awaiting an answer, if any.
func pendingOffer(c *callOff) *procurementv1.Offer {
	if n := len(c.GetOffers()); n > 0 && c.GetOffers()[n-1].GetOutcome() == pending {
		return c.GetOffers()[n-1]
	}
	return nil
}

// answering checks that the provider a request names (a provider
// principal must name itself, the guard sees to that; staff may name none)
// is the one c is offered to.
func answering(c *callOff, provider, verb string) error {
	if provider != "" && provider != c.GetProvider() {
		return status.Errorf(codes.PermissionDenied, "%s may %s only an offer made to it; %s is not offered to it", provider, verb, c.GetName())
	}
	return nil
}

// AcceptCallOff implements procurementv1.ProcurementServiceServer.
func (s *Service) AcceptCallOff(ctx context.Context, req *procurementv1.AcceptCallOffRequest) (*procurementv1.CallOff, error) {
	return s.updateCallOff(ctx, req.GetName(), req.GetEtag(), func(c *callOff, tx *store.Tx) error {
		// Who answers first: a provider learns nothing of a call-off that
		// is not (or no longer) its offer, its state included.
		if err := answering(c, req.GetProvider(), "accept"); err != nil {
			return err
		}
		if c.GetState() != offered {
			return wrongState(c.GetName(), "accept", c.GetState().String(), offered.String())
		}
		if err := s.awardIn(ctx, tx, c, ore(c.GetValue())); err != nil {
			return err
		}
		if o := pendingOffer(c); o != nil {
			o.Outcome, o.AnswerTime = accepted, c.GetAwardTime()
		}
		return s.putCallOff(tx, c, "call_off.awarded")
	})
}

// DeclineCallOff implements procurementv1.ProcurementServiceServer.
func (s *Service) DeclineCallOff(ctx context.Context, req *procurementv1.DeclineCallOffRequest) (*procurementv1.CallOff, error) {
	return s.updateCallOff(ctx, req.GetName(), req.GetEtag(), func(c *callOff, tx *store.Tx) error {
		// Who answers first: a provider learns nothing of a call-off that
		// is not (or no longer) its offer, its state included.
		if err := answering(c, req.GetProvider(), "decline"); err != nil {
			return err
		}
		if c.GetState() != offered {
			return wrongState(c.GetName(), "decline", c.GetState().String(), offered.String())
		}
		now := timestamppb.New(s.now())
		if o := pendingOffer(c); o != nil {
			o.Outcome, o.AnswerTime, o.Reason = declined, now, req.GetReason()
		}
		c.UpdateTime = now
		// The next in rank after the one who declined.
		next := slices.Index(c.GetRankedProviders(), c.GetProvider()) + 1
		if next <= 0 || next >= len(c.GetRankedProviders()) {
			c.State, c.Provider = noProvider, ""
			c.StateReason = fmt.Sprintf("all %d providers of lot %s declined", len(c.GetRankedProviders()), c.GetLot())
			return s.putCallOff(tx, c, "call_off.no_provider")
		}
		c.Provider = c.GetRankedProviders()[next]
		c.InvitedProviders = append(c.InvitedProviders, c.Provider)
		c.Offers = append(c.Offers, &procurementv1.Offer{Provider: c.Provider, Rank: int32(next + 1), Outcome: pending, OfferTime: now})
		return s.putCallOff(tx, c, "call_off.declined")
	})
}

// score is a bid's score, exactly: quality_weight·quality/100 +
// price_weight·lowest/price (prices in öre).
func score(a *agreement, quality int32, lowest, price int64) *big.Rat {
	q := big.NewRat(int64(a.GetQualityWeight())*int64(quality), 100)
	p := big.NewRat(int64(a.GetPriceWeight())*lowest, price)
	return q.Add(q, p)
}

// AwardCallOff implements procurementv1.ProcurementServiceServer.
func (s *Service) AwardCallOff(ctx context.Context, req *procurementv1.AwardCallOffRequest) (*procurementv1.CallOff, error) {
	return s.updateCallOff(ctx, req.GetName(), req.GetEtag(), func(c *callOff, tx *store.Tx) error {
		if c.GetState() != tendering {
			return wrongState(c.GetName(), "award", c.GetState().String(), tendering.String())
		}
		// Every bid writes the call-off too (its bid_count), so the bids
		// read here are all there are when this write lands (its etag).
		bids, err := s.bidsOf(ctx, c)
		if err != nil {
			return err
		}
		if s.now().Before(c.GetBidDeadline().AsTime()) && len(bids) < len(c.GetRankedProviders()) {
			return precondition("BIDDING", c.GetName(), "cannot award %s yet: %d of %d providers have bid and the bid deadline %s has not passed",
				c.GetName(), len(bids), len(c.GetRankedProviders()), c.GetBidDeadline().AsTime().Format("2006-01-02T15:04:05Z07:00"))
		}
		now := timestamppb.New(s.now())
		if len(bids) == 0 {
			c.State, c.StateReason, c.UpdateTime = noProvider, "no provider bid before the deadline", now
			return s.putCallOff(tx, c, "call_off.no_provider")
		}
		a := newAgreement()
		if err := s.st.Get(ctx, agreementKey(agreementIDOf(c)), a); err != nil {
			return err
		}
		lowest := ore(bids[0].GetPrice())
		for _, b := range bids {
			lowest = min(lowest, ore(b.GetPrice()))
		}
		// The best score wins; bids are in rank order, so on a tie the
		// first (higher-ranked) one stays the winner.
		var win *bid
		var best *big.Rat
		for _, b := range bids {
			sc := score(a, b.GetQualityScore(), lowest, ore(b.GetPrice()))
			f, _ := sc.Float64()
			b.Score = f
			if best == nil || sc.Cmp(best) > 0 {
				win, best = b, sc
			}
		}
		if err := s.awardIn(ctx, tx, c, ore(win.GetPrice())); err != nil {
			return err
		}
		for _, b := range bids {
			b.Winner = b == win
			if err := tx.Put(bidKey(callOffIDOf(c), providerID(b.GetProvider())), b); err != nil {
				return err
			}
			s.indexBid(tx, b)
		}
		c.Provider, c.WinningBid = win.GetProvider(), win.GetName()
		return s.putCallOff(tx, c, "call_off.awarded")
	})
}

func agreementIDOf(c *callOff) string {
	id, _ := parseAgreementName("", c.GetFrameworkAgreement())
	return id
}

func callOffIDOf(c *callOff) string {
	id, _ := parseCallOffName("", c.GetName())
	return id
}

// bidsOf reads the bids on c in the lot's rank order (at most one per
// ranked provider, so one pipelined read of their keys).
func (s *Service) bidsOf(ctx context.Context, c *callOff) ([]*bid, error) {
	id := callOffIDOf(c)
	keys := make([]string, len(c.GetRankedProviders()))
	for i, p := range c.GetRankedProviders() {
		keys[i] = bidKey(id, providerID(p))
	}
	return store.Load(ctx, s.st, keys, newBid)
}
