package events

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
)

// DefaultTrimEvery is how often a Trimmer trims.
const DefaultTrimEvery = 30 * time.Second

// Trimmer keeps a producer's streams short without losing an entry any
// consumer group still needs. Redis 7.0 has no XADD … ACKED (8.2 does), so
// trimming is a periodic XTRIM … MINID ~ below the oldest entry some group
// has not acknowledged: the oldest of its pending entries, or the first it
// has not been delivered yet. MINID with "~" only drops whole internal nodes
// below that id, never an entry at or above it.
//
// The bound this gives: a stream holds what its slowest group has not yet
// acknowledged plus at most one internal node (~100 entries). A consumer
// that is gone for a week leaves a week of events in the stream (at the
// hub's volume, tens of thousands of entries, a few MB), all delivered when
// it returns; its lag metric shows it meanwhile. A group that will never
// return must be deleted (XGROUP DESTROY), or the stream grows without
// bound. A stream without any group is trimmed to about store.MaxEvents.
type Trimmer struct {
	rdb     redis.UniversalClient
	log     *slog.Logger
	streams []string
	// Every is the interval between trims (default DefaultTrimEvery).
	Every time.Duration
	// MaxLenWithoutGroups bounds a stream no group reads (default
	// store.MaxEvents).
	MaxLenWithoutGroups int64
}

// NewTrimmer trims streams, which are the producing service's own.
func NewTrimmer(rdb redis.UniversalClient, log *slog.Logger, streams ...string) *Trimmer {
	if log == nil {
		log = slog.Default()
	}
	return &Trimmer{rdb: rdb, log: log, streams: streams, Every: DefaultTrimEvery, MaxLenWithoutGroups: store.MaxEvents}
}

// Run trims every Every until ctx ends.
func (t *Trimmer) Run(ctx context.Context) error {
	tick := time.NewTicker(t.Every)
	defer tick.Stop()
	for {
		for _, s := range t.streams {
			if _, err := t.Trim(ctx, s); err != nil && ctx.Err() == nil {
				t.log.WarnContext(ctx, "trimming a stream failed; will retry", "stream", s, "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Trim trims stream once and returns how many entries it removed.
func (t *Trimmer) Trim(ctx context.Context, stream string) (int64, error) {
	minID, hasGroups, err := SafeMinID(ctx, t.rdb, stream)
	if err != nil {
		return 0, err
	}
	if !hasGroups {
		return t.rdb.XTrimMaxLenApprox(ctx, stream, t.MaxLenWithoutGroups, 0).Result()
	}
	return t.rdb.XTrimMinIDApprox(ctx, stream, minID, 0).Result()
}

// SafeMinID is the lowest entry id of stream that some group still needs:
// entries below it have been delivered to and acknowledged by every group.
// hasGroups is false when no group reads the stream.
func SafeMinID(ctx context.Context, rdb redis.UniversalClient, stream string) (minID string, hasGroups bool, err error) {
	groups, err := rdb.XInfoGroups(ctx, stream).Result()
	if err != nil {
		if isNoSuchKey(err) {
			return "", false, nil
		}
		return "", false, err
	}
	if len(groups) == 0 {
		return "", false, nil
	}
	var lowest streamID
	for i, g := range groups {
		// Everything after the last delivered entry is still to come.
		need, err := parseID(g.LastDeliveredID)
		if err != nil {
			return "", true, err
		}
		need = need.next()
		if g.Pending > 0 {
			p, err := rdb.XPending(ctx, stream, g.Name).Result()
			if err != nil {
				return "", true, err
			}
			if low, err := parseID(p.Lower); err == nil && low.less(need) {
				need = low
			}
		}
		if i == 0 || need.less(lowest) {
			lowest = need
		}
	}
	return lowest.String(), true, nil
}

type streamID struct{ ms, seq uint64 }

func parseID(s string) (streamID, error) {
	msPart, seqPart, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(msPart, 10, 64)
	var seq uint64
	var err2 error
	if ok {
		seq, err2 = strconv.ParseUint(seqPart, 10, 64)
	}
	if err1 != nil || err2 != nil {
		return streamID{}, fmt.Errorf("not a stream id: %q", s)
	}
	return streamID{ms, seq}, nil
}

func (id streamID) next() streamID {
	if id.seq == ^uint64(0) {
		return streamID{id.ms + 1, 0}
	}
	return streamID{id.ms, id.seq + 1}
}

func (id streamID) less(o streamID) bool {
	return id.ms < o.ms || (id.ms == o.ms && id.seq < o.seq)
}

func (id streamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}
