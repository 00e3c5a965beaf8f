package procurement

import (
	"context"
	"errors"
	"slices"

	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/dates"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// CreateBid implements procurementv1.ProcurementServiceServer.
func (s *Service) CreateBid(ctx context.Context, req *procurementv1.CreateBidRequest) (*procurementv1.Bid, error) {
	callOffID, err := parseCallOffName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	in := req.GetBid()
	var v apierr.Violations
	price := checkSEK(&v, "bid.price", in.GetPrice())
	checkDate(&v, "bid.proposed_start", in.GetProposedStart())
	if err := v.Err(); err != nil {
		return nil, err
	}
	fingerprint := store.Fingerprint(req)
	if req.GetRequestId() != "" {
		// A retry returns the first bid, even after the deadline or the award.
		replay, err := s.st.Replayed(ctx, idemKey("bid", callOffID, req.GetRequestId()), fingerprint)
		if err != nil {
			return nil, err
		}
		if replay != nil {
			return s.bidNamed(ctx, replay.Name)
		}
	}
	key := callOffKey(callOffID)
	// Retried when the call-off changes between reading and writing (another
	// provider's bid lands first, say).
	for range 20 {
		c := newCallOff()
		if err := s.st.Get(ctx, key, c); errors.Is(err, store.ErrNotFound) {
			return nil, apierr.NotFound(req.GetParent())
		} else if err != nil {
			return nil, err
		}
		if c.GetState() != tendering {
			return nil, wrongState(c.GetName(), "bid on", c.GetState().String(), tendering.String())
		}
		if !s.now().Before(c.GetBidDeadline().AsTime()) {
			return nil, precondition("DEADLINE", c.GetName(), "the bid deadline of %s passed at %s; no more bids are taken",
				c.GetName(), c.GetBidDeadline().AsTime().Format("2006-01-02T15:04:05Z07:00"))
		}
		rank := slices.Index(c.GetRankedProviders(), in.GetProvider()) + 1
		if rank == 0 {
			return nil, precondition("LOT", c.GetName(), "%s is not a provider of lot %s of %s; only its providers may bid",
				in.GetProvider(), c.GetLot(), c.GetFrameworkAgreement())
		}
		if price > ore(c.GetValue()) {
			return nil, apierr.Field("bid.price", "%s is more than the call-off's value of %s", formatSEK(price), formatSEK(ore(c.GetValue())))
		}
		if start := in.GetProposedStart(); dates.Key(start) < s.today() || dates.Key(start) > dates.Key(c.GetSpecification().GetLatestStart()) {
			return nil, apierr.Field("bid.proposed_start", "%s must be between today and the latest start %s",
				dates.String(start), dates.String(c.GetSpecification().GetLatestStart()))
		}
		b := proto.CloneOf(in)
		pid := providerID(in.GetProvider())
		b.Name, b.Rank, b.CreateTime = bidName(callOffID, pid), int32(rank), timestamppb.New(s.now())
		b.Score, b.Winner = 0, false

		tx := s.st.Tx()
		if req.GetRequestId() != "" {
			tx.Idempotent(idemKey("bid", callOffID, req.GetRequestId()), b.GetName(), fingerprint)
		}
		// The call-off as read: still TENDERING, and its bid count is what
		// the award reads every bid by.
		tx.EtagIs(key, c.GetEtag(), nil)
		tx.MustNotExist(bidKey(callOffID, pid), status.Errorf(codes.AlreadyExists, "%s has already bid on %s; one bid each", in.GetProvider(), c.GetName()))
		if err := tx.Put(bidKey(callOffID, pid), b); err != nil {
			return nil, err
		}
		s.indexBid(tx, b)
		c.BidCount++
		c.UpdateTime = b.GetCreateTime()
		if err := tx.Put(key, c); err != nil {
			return nil, err
		}
		s.indexCallOff(tx, c)
		tx.Emit("bid.created", b.GetName(), b)
		replay, err := tx.Commit(ctx)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if replay != nil {
			return s.bidNamed(ctx, replay.Name)
		}
		return b, nil
	}
	return nil, status.Errorf(codes.Aborted, "%s kept changing while the bid was placed; retry", req.GetParent())
}

// ListBids implements procurementv1.ProcurementServiceServer.
func (s *Service) ListBids(ctx context.Context, req *procurementv1.ListBidsRequest) (*procurementv1.ListBidsResponse, error) {
	callOffID, err := parseCallOffName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if err := s.st.Get(ctx, callOffKey(callOffID), newCallOff()); errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound(req.GetParent())
	} else if err != nil {
		return nil, err
	}
	lr := listing.Request{
		Method: "ListBids", Parent: req.GetParent() + "\x00" + req.GetProvider(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
		Where: map[string]string{"parent": req.GetParent()},
	}
	if p := req.GetProvider(); p != "" && p != "providers/-" {
		lr.Where["provider"] = p
	}
	page, err := s.bidLister().List(ctx, lr)
	if err != nil {
		return nil, err
	}
	return &procurementv1.ListBidsResponse{Bids: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}

func (s *Service) bidNamed(ctx context.Context, name string) (*bid, error) {
	bs, err := s.loadBids(ctx, []string{name})
	if err != nil {
		return nil, err
	}
	if len(bs) == 0 {
		return nil, apierr.NotFound(name)
	}
	return bs[0], nil
}
