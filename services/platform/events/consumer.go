package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
)

// Retention is how long ApplyOnce remembers an applied event id.
const Retention = 7 * 24 * time.Hour

// Defaults of Config.
const (
	DefaultBatch         = 10
	DefaultBlock         = 2 * time.Second
	DefaultClaimIdle     = 30 * time.Second
	DefaultMaxDeliveries = 5
	DefaultBackoff       = 200 * time.Millisecond
)

// Entry fields of a stream entry written by store.Tx.Emit, and the one a
// replayed dead letter carries.
const (
	fieldType      = "type"
	fieldEvent     = "event"
	fieldReplayFor = "replay_for"
)

// Config configures a Consumer.
type Config struct {
	// Source is the Redis that holds the stream: the producer's.
	Source redis.UniversalClient
	// Stream is the stream key, e.g. "kn:{councils}:events".
	Stream string
	// Group is the consumer group: the consuming service's name.
	Group string
	// Consumer names this process within the group; default ConsumerName().
	Consumer string
	// StartID is where a group created by this consumer starts: "0"
	// (default: everything the stream still holds) or "$" (only new entries).
	StartID string
	// Batch is how many entries one read takes (default DefaultBatch).
	Batch int
	// Block is how long one read waits for new entries (default
	// DefaultBlock). A stop does not wait for it: entries a read abandoned
	// at a stop stay pending and are reclaimed.
	Block time.Duration
	// ClaimIdle is how long an entry must have been pending with another
	// consumer before this one takes it over (default DefaultClaimIdle).
	ClaimIdle time.Duration
	// MaxDeliveries is how many deliveries an entry gets before it goes to
	// the dead-letter stream (default DefaultMaxDeliveries).
	MaxDeliveries int64
	// Backoff is the delay before the first retry of a failed entry; it
	// doubles with each delivery, up to ClaimIdle/2 (default DefaultBackoff).
	Backoff time.Duration
	// Logger gets a line per dead letter and per storage error.
	Logger *slog.Logger
	// Raw hands entries to the handler as they are (Delivery.Values), for
	// streams whose entries are not event envelopes (the audit streams);
	// Delivery.Event is then nil and ApplyOnce keys on the entry id.
	Raw bool
}

// Delivery is one event handed to a Handler.
type Delivery struct {
	Stream, Group string
	// ID is the stream entry id.
	ID string
	// Deliveries counts this delivery: 1 the first time.
	Deliveries int64
	// Event is the envelope (nil for a Raw consumer).
	Event *commonv1.Event
	// Values are the stream entry's fields as they are.
	Values map[string]any
}

// Decode unpacks the event's data (the resource after the change) into m.
func (d *Delivery) Decode(m proto.Message) error {
	if err := d.Event.GetData().UnmarshalTo(m); err != nil {
		return fmt.Errorf("event %s (%s): data is not a %s: %w", d.Event.GetId(), d.Event.GetType(), m.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

// ApplyOnce makes tx, the write that is the handler's effect, apply at most
// once per event and consumer group: the event id is recorded in the same
// atomic step (kept Retention) and a redelivery commits nothing.
func ApplyOnce(tx *store.Tx, d *Delivery) {
	if d.Event == nil {
		tx.Once(Retention, "entry", d.Group, d.Stream, d.ID)
		return
	}
	tx.Once(Retention, "event", d.Group, d.Event.GetId())
}

// Handler handles one event. It returns nil only once the event's effect is
// committed; an error makes the event be delivered again (with backoff, up
// to MaxDeliveries) and then dead-lettered.
type Handler func(ctx context.Context, d *Delivery) error

// Route dispatches by event type; events of other types are acknowledged
// without effect.
func Route(byType map[string]Handler) Handler {
	return func(ctx context.Context, d *Delivery) error {
		if h, ok := byType[d.Event.GetType()]; ok {
			return h(ctx, d)
		}
		return nil
	}
}

// ConsumerName is this process's name within a group: the host name (a
// pod's name in Kubernetes) and the process id, unique per process so that
// replicas share a group's work and a restarted process is a new consumer.
func ConsumerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// DeadLetterStream is where entries of stream that group gave up on go:
// beside stream, in the producer's hash slot.
func DeadLetterStream(stream, group string) string {
	prefix, rest, ok := splitTag(stream)
	if !ok {
		return stream + ":deadletter:" + group
	}
	if rest == "events" {
		return prefix + "deadletter:" + group
	}
	return prefix + "deadletter:" + group + ":" + rest
}

// splitTag splits "kn:{svc}:rest" into "kn:{svc}:" and "rest".
func splitTag(key string) (prefix, rest string, ok bool) {
	i := strings.Index(key, "}:")
	if !strings.HasPrefix(key, "kn:{") || i < 0 {
		return "", "", false
	}
	return key[:i+2], key[i+2:], true
}

// Consumer reads one stream as one member of one consumer group.
type Consumer struct {
	cfg     Config
	h       Handler
	log     *slog.Logger
	dlq     string
	metrics *consumerMetrics
	// retries are this consumer's failed entries waiting for their backoff:
	// entry id → when to try again and how often it was delivered.
	retries map[string]retry
}

type retry struct {
	at         time.Time
	deliveries int64
}

// NewConsumer checks cfg and applies its defaults.
func NewConsumer(cfg Config, h Handler) (*Consumer, error) {
	switch {
	case cfg.Source == nil:
		return nil, errors.New("events: no source Redis")
	case cfg.Stream == "":
		return nil, errors.New("events: no stream")
	case cfg.Group == "":
		return nil, errors.New("events: no consumer group")
	case h == nil:
		return nil, errors.New("events: no handler")
	}
	if cfg.Consumer == "" {
		cfg.Consumer = ConsumerName()
	}
	if cfg.StartID == "" {
		cfg.StartID = "0"
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Block <= 0 {
		cfg.Block = DefaultBlock
	}
	if cfg.ClaimIdle <= 0 {
		cfg.ClaimIdle = DefaultClaimIdle
	}
	if cfg.MaxDeliveries <= 0 {
		cfg.MaxDeliveries = DefaultMaxDeliveries
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("stream", cfg.Stream, "group", cfg.Group)
	return &Consumer{cfg: cfg, h: h, log: log, dlq: DeadLetterStream(cfg.Stream, cfg.Group),
		retries: map[string]retry{}, metrics: newConsumerMetrics(cfg.Stream, cfg.Group)}, nil
}

// Run consumes until ctx ends, then returns nil after the entry in hand is
// handled; entries read but not yet handled stay pending and are reclaimed
// by the group. It returns an error only when the group cannot be set up.
// Storage errors while running are logged and retried.
func (c *Consumer) Run(ctx context.Context) error {
	if err := c.ensureGroup(ctx); err != nil {
		return err
	}
	unregister := c.metrics.observe(c.cfg.Source, c.dlq)
	defer unregister()
	// Whatever this consumer name still has pending (a previous run that
	// stopped mid-batch) comes first.
	c.reclaimOwn(ctx)
	var lastClaim time.Time
	pause := time.Duration(0)
	for ctx.Err() == nil {
		if pause > 0 {
			sleep(ctx, pause)
			pause = 0
		}
		if time.Since(lastClaim) >= c.cfg.ClaimIdle/2 {
			if err := c.reclaim(ctx); err != nil {
				pause = c.storageError(ctx, "reclaiming", err)
				continue
			}
			lastClaim = time.Now()
		}
		if err := c.retryDue(ctx); err != nil {
			pause = c.storageError(ctx, "retrying", err)
			continue
		}
		msgs, err := c.read(ctx)
		if err != nil {
			pause = c.storageError(ctx, "reading", err)
			continue
		}
		c.handleAll(ctx, msgs, nil)
	}
	return nil
}

// storageError logs err (unless the consumer is stopping) and says how long
// to wait before the next attempt.
func (c *Consumer) storageError(ctx context.Context, what string, err error) time.Duration {
	if ctx.Err() == nil {
		c.log.WarnContext(ctx, "event consumer: "+what+" failed; retrying", "error", err)
	}
	return time.Second
}

func (c *Consumer) ensureGroup(ctx context.Context) error {
	err := c.cfg.Source.XGroupCreateMkStream(ctx, c.cfg.Stream, c.cfg.Group, c.cfg.StartID).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("events: creating group %s on %s: %w", c.cfg.Group, c.cfg.Stream, err)
	}
	return nil
}

// read waits up to Block for new entries. A stop does not wait for the read:
// it returns at once, and what the abandoned read took stays pending for
// the group to reclaim.
func (c *Consumer) read(ctx context.Context) ([]redis.XMessage, error) {
	block := c.cfg.Block
	if next, ok := c.nextRetry(); ok {
		block = min(block, max(time.Until(next), time.Millisecond))
	}
	type result struct {
		streams []redis.XStream
		err     error
	}
	done := make(chan result, 1)
	go func() {
		s, err := c.cfg.Source.XReadGroup(context.WithoutCancel(ctx), &redis.XReadGroupArgs{
			Group: c.cfg.Group, Consumer: c.cfg.Consumer, Streams: []string{c.cfg.Stream, ">"},
			Count: int64(c.cfg.Batch), Block: block,
		}).Result()
		done <- result{s, err}
	}()
	select {
	case <-ctx.Done():
		return nil, nil
	case r := <-done:
		if errors.Is(r.err, redis.Nil) {
			return nil, nil
		}
		if r.err != nil {
			return nil, r.err
		}
		var msgs []redis.XMessage
		for _, s := range r.streams {
			msgs = append(msgs, s.Messages...)
		}
		return msgs, nil
	}
}

// reclaim takes over entries another consumer left pending for ClaimIdle
// (it crashed, or was stopped mid-batch) and handles them.
func (c *Consumer) reclaim(ctx context.Context) error {
	start := "0-0"
	for ctx.Err() == nil {
		msgs, next, err := c.cfg.Source.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: c.cfg.Stream, Group: c.cfg.Group, Consumer: c.cfg.Consumer,
			MinIdle: c.cfg.ClaimIdle, Start: start, Count: int64(c.cfg.Batch),
		}).Result()
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			counts, err := c.deliveryCounts(ctx, msgs)
			if err != nil {
				return err
			}
			c.handleAll(ctx, msgs, counts)
		}
		if next == "0-0" || next == "" {
			return nil
		}
		start = next
	}
	return nil
}

// reclaimOwn handles what this consumer name already has pending.
func (c *Consumer) reclaimOwn(ctx context.Context) {
	s, err := c.cfg.Source.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.cfg.Group, Consumer: c.cfg.Consumer, Streams: []string{c.cfg.Stream, "0"},
		Count: 1000,
	}).Result()
	if err != nil {
		return
	}
	for _, st := range s {
		if len(st.Messages) == 0 {
			continue
		}
		counts, err := c.deliveryCounts(ctx, st.Messages)
		if err != nil {
			return
		}
		c.handleAll(ctx, st.Messages, counts)
	}
}

// deliveryCounts reads how often each of msgs was delivered (XAUTOCLAIM and
// XCLAIM do not say).
func (c *Consumer) deliveryCounts(ctx context.Context, msgs []redis.XMessage) (map[string]int64, error) {
	pending, err := c.cfg.Source.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: c.cfg.Stream, Group: c.cfg.Group, Consumer: c.cfg.Consumer,
		Start: msgs[0].ID, End: msgs[len(msgs)-1].ID, Count: int64(len(msgs)) + 100,
	}).Result()
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(pending))
	for _, p := range pending {
		counts[p.ID] = p.RetryCount
	}
	return counts, nil
}

func (c *Consumer) nextRetry() (time.Time, bool) {
	var next time.Time
	for _, r := range c.retries {
		if next.IsZero() || r.at.Before(next) {
			next = r.at
		}
	}
	return next, !next.IsZero()
}

// retryDue claims again this consumer's failed entries whose backoff has
// passed and handles them. XCLAIM's minimum idle time is the backoff: had
// another consumer taken the entry over meanwhile, it is not idle that long
// and stays with them.
func (c *Consumer) retryDue(ctx context.Context) error {
	now := time.Now()
	for id, r := range c.retries {
		if r.at.After(now) {
			continue
		}
		delete(c.retries, id)
		msgs, err := c.cfg.Source.XClaim(ctx, &redis.XClaimArgs{
			Stream: c.cfg.Stream, Group: c.cfg.Group, Consumer: c.cfg.Consumer,
			MinIdle: c.backoff(r.deliveries) / 2, Messages: []string{id},
		}).Result()
		if err != nil {
			c.retries[id] = r
			return err
		}
		if len(msgs) == 0 {
			continue // taken over by another consumer, or trimmed away
		}
		c.handleAll(ctx, msgs, map[string]int64{id: r.deliveries + 1})
	}
	return nil
}

func (c *Consumer) backoff(deliveries int64) time.Duration {
	d := c.cfg.Backoff
	for i := int64(1); i < deliveries && d < c.cfg.ClaimIdle/2; i++ {
		d *= 2
	}
	return min(d, c.cfg.ClaimIdle/2)
}

// handleAll handles msgs in order and acknowledges the handled ones in one
// call. counts gives each entry's delivery count (nil: first delivery). A
// stop lets the batch in hand finish: its handlers run without the stop's
// cancellation (the process's shutdown grace bounds them).
func (c *Consumer) handleAll(ctx context.Context, msgs []redis.XMessage, counts map[string]int64) {
	ctx = context.WithoutCancel(ctx)
	var ack []string
	for _, m := range msgs {
		n := int64(1)
		if counts != nil {
			if v, ok := counts[m.ID]; ok {
				n = v
			}
		}
		if c.handle(ctx, m, n) {
			ack = append(ack, m.ID)
		}
	}
	if len(ack) > 0 {
		if err := c.cfg.Source.XAck(ctx, c.cfg.Stream, c.cfg.Group, ack...).Err(); err != nil {
			c.log.WarnContext(ctx, "event consumer: acknowledging failed; the entries will be delivered again and applied once", "error", err)
		}
	}
}

// handle runs the handler on one entry and says whether to acknowledge it.
// An entry that goes to the dead-letter stream is acknowledged there.
func (c *Consumer) handle(ctx context.Context, m redis.XMessage, deliveries int64) bool {
	if g, _ := m.Values[fieldReplayFor].(string); g != "" && g != c.cfg.Group {
		return true // a dead letter replayed for another group
	}
	if c.cfg.Raw {
		return c.deliver(ctx, m, &Delivery{Stream: c.cfg.Stream, Group: c.cfg.Group, ID: m.ID, Deliveries: deliveries, Values: m.Values}, deliveries)
	}
	raw, _ := m.Values[fieldEvent].(string)
	ev := &commonv1.Event{}
	if err := proto.Unmarshal([]byte(raw), ev); err != nil || ev.GetId() == "" || raw == "" {
		reason := "entry has no decodable event envelope"
		if err != nil {
			reason += ": " + err.Error()
		}
		c.deadLetter(ctx, m, deliveries, reason)
		c.metrics.handled(ctx, "poison")
		return false
	}
	return c.deliver(ctx, m, &Delivery{Stream: c.cfg.Stream, Group: c.cfg.Group, ID: m.ID, Deliveries: deliveries, Event: ev, Values: m.Values}, deliveries)
}

// deliver runs the handler on d and says whether to acknowledge the entry.
func (c *Consumer) deliver(ctx context.Context, m redis.XMessage, d *Delivery, deliveries int64) bool {
	err := c.run(ctx, d)
	if err == nil {
		c.metrics.handled(ctx, "ok")
		return true
	}
	if deliveries >= c.cfg.MaxDeliveries {
		c.deadLetter(ctx, m, deliveries, err.Error())
		c.metrics.handled(ctx, "dead_letter")
		return false
	}
	c.metrics.handled(ctx, "retry")
	c.retries[m.ID] = retry{at: time.Now().Add(c.backoff(deliveries)), deliveries: deliveries}
	return false
}

// run calls the handler in a span linked to the producer's trace, and
// turns a panic into an error so one event cannot stop the consumer.
func (c *Consumer) run(ctx context.Context, d *Delivery) (err error) {
	ctx, span := startSpan(ctx, d)
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
		c.metrics.latency(ctx, time.Since(start), err)
		endSpan(span, err)
	}()
	return c.h(ctx, d)
}

// deadLetter copies the entry to the dead-letter stream and acknowledges it,
// in one atomic step (both keys are in the producer's hash slot).
func (c *Consumer) deadLetter(ctx context.Context, m redis.XMessage, deliveries int64, reason string) {
	values := []any{
		"stream", c.cfg.Stream, "group", c.cfg.Group, "id", m.ID,
		"deliveries", deliveries, "error", truncate(reason, 2000),
		"time", time.Now().UTC().Format(time.RFC3339Nano),
	}
	for _, f := range []string{fieldType, fieldEvent} {
		if v, ok := m.Values[f]; ok {
			values = append(values, f, v)
		}
	}
	_, err := c.cfg.Source.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: c.dlq, Values: values})
		p.XAck(ctx, c.cfg.Stream, c.cfg.Group, m.ID)
		return nil
	})
	if err != nil {
		c.log.ErrorContext(ctx, "event consumer: could not dead-letter an entry; it stays pending", "id", m.ID, "error", err)
		return
	}
	c.log.ErrorContext(ctx, "event dead-lettered", "id", m.ID, "type", m.Values[fieldType],
		"deliveries", deliveries, "reason", truncate(reason, 500), "dead_letters", c.dlq)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
