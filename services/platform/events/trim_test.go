package events_test

import (
	"context"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
)

// readAck delivers up to n new entries to group and acknowledges all but
// the last keepPending of them.
func readAck(t *testing.T, rdb redis.UniversalClient, g string, n, keepPending int) {
	t.Helper()
	ctx := context.Background()
	for n > 0 {
		s, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: g, Consumer: "c", Streams: []string{stream, ">"}, Count: int64(min(n, 1000))}).Result()
		if err != nil {
			t.Fatal(err)
		}
		msgs := s[0].Messages
		n -= len(msgs)
		ack := make([]string, 0, len(msgs))
		for i, m := range msgs {
			if n == 0 && i >= len(msgs)-keepPending {
				break
			}
			ack = append(ack, m.ID)
		}
		if len(ack) > 0 {
			rdb.XAck(ctx, stream, g, ack...)
		}
	}
}

func TestTrimmingKeepsWhatAGroupHasNotAcknowledged(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		ids := produce(t, rdb, 0, 6000)
		for _, g := range []string{"fast", "slow"} {
			if err := rdb.XGroupCreate(ctx, stream, g, "0").Err(); err != nil {
				t.Fatal(err)
			}
		}
		readAck(t, rdb, "fast", 6000, 0)
		// slow: 1 000 delivered, of which the last 10 are still pending;
		// 5 000 not delivered at all.
		readAck(t, rdb, "slow", 1000, 10)
		tr := events.NewTrimmer(rdb, testkit.Logger(), stream)

		if _, err := tr.Trim(ctx, stream); err != nil {
			t.Fatal(err)
		}
		oldestNeeded := ids[990]
		got, err := rdb.XRange(ctx, stream, oldestNeeded, "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 5010 || got[0].ID != oldestNeeded {
			t.Fatalf("after trimming, %d entries from the oldest one slow needs (want 5010, starting at %s)", len(got), oldestNeeded)
		}
		n, _ := rdb.XLen(ctx, stream).Result()
		if n >= 6000 {
			t.Fatalf("nothing trimmed: %d entries", n)
		}

		// slow catches up: the stream shrinks to at most one internal node.
		rdb.XAck(ctx, stream, "slow", ids[990:1000]...)
		readAck(t, rdb, "slow", 5000, 0)
		if _, err := tr.Trim(ctx, stream); err != nil {
			t.Fatal(err)
		}
		if n, _ := rdb.XLen(ctx, stream).Result(); n > 100 {
			t.Fatalf("after every group caught up the stream still has %d entries", n)
		}

		// A new entry no group has seen yet is never trimmed.
		fresh := produce(t, rdb, 6000, 1)[0]
		if _, err := tr.Trim(ctx, stream); err != nil {
			t.Fatal(err)
		}
		if got, _ := rdb.XRange(ctx, stream, fresh, fresh).Result(); len(got) != 1 {
			t.Fatal("an undelivered entry was trimmed")
		}
	})
}

func TestStreamWithoutGroupsIsCapped(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		produce(t, rdb, 0, 3000)
		tr := events.NewTrimmer(rdb, testkit.Logger(), stream)
		tr.MaxLenWithoutGroups = 1000
		if _, err := tr.Trim(ctx, stream); err != nil {
			t.Fatal(err)
		}
		if n, _ := rdb.XLen(ctx, stream).Result(); n < 1000 || n > 1100 {
			t.Fatalf("%d entries, want about 1000", n)
		}
		// A stream that does not exist yet is not an error.
		if _, err := tr.Trim(ctx, "kn:{nobody}:events"); err != nil {
			t.Fatal(err)
		}
	})
}
