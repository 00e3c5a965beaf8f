package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// take is one racer for a room of 5: a seat while the count fits, else a
// place in the queue, each alternative with its own resource and event.
func take(ctx context.Context, s *store.Store, i int) (store.Outcome, error) {
	room, queue := ks.Key("room"), ks.Key("queue")
	name := fmt.Sprintf("councils/r%03d", i)
	tx := s.Tx()
	seat, wait := tx.Branch(store.Fits(room, "taken", 1, 5))
	seat.HIncrBy(room, "taken", 1)
	if err := seat.Put(ks.Key("r", name), &councilsv1.SectorCouncil{Name: name, DisplayName: "seated"}); err != nil {
		return store.Outcome{}, err
	}
	seat.Emit("seated", name, &councilsv1.SectorCouncil{Name: name})
	wait.ZAddSeq(queue, name, room, "seq")
	if err := wait.Put(ks.Key("r", name), &councilsv1.SectorCouncil{Name: name, DisplayName: "queued"}); err != nil {
		return store.Outcome{}, err
	}
	wait.Emit("queued", name, &councilsv1.SectorCouncil{Name: name})
	tx.SAdd(ks.Key("everyone"), name) // either way
	tx.ReportRank(queue, name)
	_, err := tx.Commit(ctx)
	return tx.Outcome(), err
}

// A Branch decided inside the script never lets more than the room in,
// however many race for it; the rest queue in commit order, and each
// writer learns which alternative it got and its place.
func TestBranchSeatsExactlyTheRoomAndQueuesTheRest(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		var mu sync.Mutex
		var seated int
		var places []int64
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				o, err := take(ctx, s, i)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if o.Then {
					seated++
					if o.Ranks[0] != -1 {
						t.Errorf("seated but ranked %d in the queue", o.Ranks[0])
					}
				} else {
					places = append(places, o.Ranks[0])
				}
			})
		}
		wg.Wait()
		slices.Sort(places)
		if seated != 5 || len(places) != 35 {
			t.Fatalf("%d seated, %d queued", seated, len(places))
		}
		for i, p := range places {
			if p != int64(i) { // each place 0..34 exactly once
				t.Fatalf("queue places %v", places)
			}
		}
		if n, _ := rdb.HGet(ctx, ks.Key("room"), "taken").Int(); n != 5 {
			t.Fatalf("taken = %d", n)
		}
		if n, _ := rdb.SCard(ctx, ks.Key("everyone")).Result(); n != 40 {
			t.Fatalf("the unconditional write happened %d times", n)
		}
		// Each racer's resource and event are its own alternative's.
		queued, _ := rdb.ZRange(ctx, ks.Key("queue"), 0, -1).Result()
		msgs, _ := rdb.XRange(ctx, ks.Events(), "-", "+").Result()
		types := map[string]int{}
		for _, m := range msgs {
			types[m.Values["type"].(string)]++
		}
		if types["kompetensnav.storetest.v1.seated"] != 5 || types["kompetensnav.storetest.v1.queued"] != 35 {
			t.Fatalf("events %v", types)
		}
		for _, name := range queued {
			var c councilsv1.SectorCouncil
			if err := s.Get(ctx, ks.Key("r", name), &c); err != nil || c.GetDisplayName() != "queued" {
				t.Fatalf("%s: %v %v", name, c.GetDisplayName(), err)
			}
		}
		// The queue is in commit order: its scores are 1..35.
		zs, _ := rdb.ZRangeWithScores(ctx, ks.Key("queue"), 0, -1).Result()
		for i, z := range zs {
			if z.Score != float64(i+1) {
				t.Fatalf("queue scores %v", zs)
			}
		}
	})
}

// A resent copy of a branched write learns what the first copy did.
func TestResentBranchReportsTheFirstOutcome(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		rdb.HSet(ctx, ks.Key("room"), "taken", 5) // full
		tx := s.Tx()
		seat, wait := tx.Branch(store.Fits(ks.Key("room"), "taken", 1, 5))
		seat.HIncrBy(ks.Key("room"), "taken", 1)
		wait.ZAddSeq(ks.Key("queue"), "a", ks.Key("room"), "seq")
		tx.ReportRank(ks.Key("queue"), "a")
		for i := range 2 {
			if _, err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if o := tx.Outcome(); o.Then || len(o.Ranks) != 1 || o.Ranks[0] != 0 {
				t.Fatalf("copy %d: outcome %+v", i+1, o)
			}
		}
		if n, _ := rdb.ZCard(ctx, ks.Key("queue")).Result(); n != 1 {
			t.Fatalf("queue holds %d", n)
		}
	})
}

// FirstIs refuses a write once the head of a queue is no longer the one read.
func TestFirstIs(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		q := ks.Key("queue")
		rdb.ZAdd(ctx, q, redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2, Member: "b"})
		errMoved := status.Error(codes.Aborted, "moved")
		tx := s.Tx()
		tx.FirstIs(q, "b", errMoved)
		tx.ZRem(q, "b")
		if _, err := tx.Commit(ctx); !errors.Is(err, errMoved) {
			t.Fatalf("b is not first: %v", err)
		}
		tx = s.Tx()
		tx.FirstIs(q, "a", errMoved)
		tx.ZRem(q, "a")
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		tx = s.Tx()
		tx.FirstIs(ks.Key("empty"), "a", errMoved)
		tx.HSet(ks.Key("h"), "f", "1")
		if _, err := tx.Commit(ctx); !errors.Is(err, errMoved) {
			t.Fatalf("an empty queue has no first: %v", err)
		}
	})
}

// A Tx without a Branch reports Then, and a second Branch is refused.
func TestOutcomeWithoutBranch(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		tx := s.Tx()
		tx.HSet(ks.Key("h"), "f", "1")
		if _, err := tx.Commit(ctx); err != nil || !tx.Outcome().Then {
			t.Fatalf("%v %+v", err, tx.Outcome())
		}
		tx = s.Tx()
		tx.Branch(store.Fits(ks.Key("h"), "n", 1, 1))
		tx.Branch(store.Fits(ks.Key("h"), "n", 1, 1))
		if _, err := tx.Commit(ctx); err == nil {
			t.Fatal("two Branches accepted")
		}
	})
}
