package councils

import (
	"context"
	"fmt"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The need follows its call-off without a distributed transaction: the
// procurement service awards a call-off and emits call_off.awarded in the
// same atomic step; this consumer moves the need APPROVED → IN_PROCUREMENT.
// Delivery is at least once and the move is applied once (events.ApplyOnce
// in the move's own atomic step, and a need no longer APPROVED is left as
// it is), so after a crash on either side the two agree again once the
// consumer runs.

// ProcurementEvents is the procurement service's stream, read by consumer
// group ProcurementGroup.
var ProcurementEvents = store.Keyspace("procurement").Events()

// ProcurementGroup is the councils service's consumer group on it.
const ProcurementGroup = "councils"

const callOffAwarded = "kompetensnav.procurement.v1.call_off.awarded"

// consumeProcurement runs the consumer of procurement's events until ctx ends.
func (s *Service) consumeProcurement(ctx context.Context) error {
	c, err := events.NewConsumer(events.Config{
		Source: s.procurementEv, Stream: ProcurementEvents, Group: ProcurementGroup, Logger: s.log,
	}, events.Route(map[string]events.Handler{callOffAwarded: s.callOffAwarded}))
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// callOffAwarded moves the call-off's need into procurement.
func (s *Service) callOffAwarded(ctx context.Context, d *events.Delivery) error {
	var c procurementv1.CallOff
	if err := d.Decode(&c); err != nil {
		return err
	}
	councilID, id, err := parseNeedName("need", c.GetNeed())
	if err != nil {
		return nil // not one of our needs' names: nothing to move
	}
	_, err = store.Update(ctx, s.st, needKey(councilID, id), c.GetNeed(), "", newNeed,
		func(n *councilsv1.CompetenceNeed, tx *store.Tx) error {
			if n.GetState() != approved {
				// Moved already (a second call-off, a redelivery), or
				// closed meanwhile: the need's own state wins.
				return store.ErrUnchanged
			}
			council, err := s.loadCouncil(ctx, councilID)
			switch {
			case status.Code(err) == codes.NotFound:
				council = nil
				tx.MustNotExist(councilKey(councilID), store.ErrConflict)
			case err != nil:
				return err
			default:
				tx.EtagIs(councilKey(councilID), council.GetEtag(), nil)
			}
			events.ApplyOnce(tx, d)
			n.State, n.UpdateTime = inProcurement, timestamppb.New(s.now())
			n.StateReason = fmt.Sprintf("%s awarded to %s", c.GetName(), c.GetProvider())
			if err := tx.Put(needKey(councilID, id), n); err != nil {
				return err
			}
			s.indexNeed(tx, n, council)
			tx.Emit(procureT.event, n.GetName(), n)
			return nil
		})
	if status.Code(err) == codes.NotFound {
		return nil // no such need here: nothing to move
	}
	return err
}
