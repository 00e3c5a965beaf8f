package procurement

import (
	"context"
	"errors"
	"time"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
)

// The queue of approved needs is procurement's own copy, kept from the
// councils service's events: a need enters it when approved and leaves it
// for good when a call-off for it is awarded (in the award's own atomic
// step) or when councils reports it rejected, closed, or already in
// procurement. A need's lifecycle never returns to APPROVED, so "left for
// good" (dequeuedKey) makes the queue right whatever order the events come
// in and however often one is delivered.

// ConsumerGroup is procurement's consumer group on other services' streams.
const ConsumerGroup = "procurement"

const councilsEventType = "kompetensnav.councils.v1."

// errGone is the approval's check failing: the need already left the queue.
var errGone = errors.New("the need already left the queue")

// queueConsumer follows the councils service's stream.
func (s *Service) queueConsumer() (*events.Consumer, error) {
	leave := func(ctx context.Context, d *events.Delivery) error {
		var n councilsv1.CompetenceNeed
		if err := d.Decode(&n); err != nil {
			return err
		}
		tx := s.st.Tx()
		events.ApplyOnce(tx, d)
		if !s.dequeue(tx, n.GetName()) {
			return nil
		}
		_, err := tx.Commit(ctx)
		return err
	}
	return events.NewConsumer(events.Config{
		Source: s.councilsEv, Stream: CouncilsEvents, Group: ConsumerGroup, Logger: s.log,
	}, events.Route(map[string]events.Handler{
		councilsEventType + "need.approved":            s.enqueue,
		councilsEventType + "need.rejected":            leave,
		councilsEventType + "need.closed":              leave,
		councilsEventType + "need.procurement_started": leave,
	}))
}

// enqueue puts an approved need in the queue, unless it already left it.
func (s *Service) enqueue(ctx context.Context, d *events.Delivery) error {
	var n councilsv1.CompetenceNeed
	if err := d.Decode(&n); err != nil {
		return err
	}
	council, id, ok := parseNeedName(n.GetName())
	if !ok {
		return nil // not a need name: nothing to queue
	}
	q := &queued{
		Need: n.GetName(), Title: n.GetTitle(), Council: "councils/" + council, Priority: n.GetPriority(),
		Headcount: n.GetHeadcount(), NeededBy: n.GetNeededBy(), ApproveTime: n.GetUpdateTime(),
	}
	if q.ApproveTime == nil {
		q.ApproveTime = d.Event.GetTime()
	}
	tx := s.st.Tx()
	events.ApplyOnce(tx, d)
	tx.MustNotExist(dequeuedKey(council, id), errGone)
	if err := tx.Put(queuedKey(council, id), q); err != nil {
		return err
	}
	s.indexQueued(tx, q)
	_, err := tx.Commit(ctx)
	if errors.Is(err, errGone) {
		return nil // awarded, rejected or closed before this approval arrived
	}
	return err
}

// dequeue adds to tx the removal of a need from the queue, for good. It
// reports false for a name that is not a need's.
func (s *Service) dequeue(tx *store.Tx, need string) bool {
	council, id, ok := parseNeedName(need)
	if !ok {
		return false
	}
	tx.DropIndex(queuedKey(council, id))
	tx.Del(queuedKey(council, id))
	tx.HSet(dequeuedKey(council, id), "at", s.now().UTC().Format(time.RFC3339Nano))
	return true
}

// ListQueuedNeeds implements procurementv1.ProcurementServiceServer.
func (s *Service) ListQueuedNeeds(ctx context.Context, req *procurementv1.ListQueuedNeedsRequest) (*procurementv1.ListQueuedNeedsResponse, error) {
	page, err := s.queueLister().List(ctx, listing.Request{
		Method: "ListQueuedNeeds", Filter: req.GetFilter(), OrderBy: req.GetOrderBy(),
		PageSize: req.GetPageSize(), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return &procurementv1.ListQueuedNeedsResponse{QueuedNeeds: page.Items, NextPageToken: page.Next, TotalSize: page.TotalSize()}, nil
}
