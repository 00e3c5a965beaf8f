package store_test

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

const ks = store.Keyspace("storetest")

var errExists = status.Error(codes.AlreadyExists, "exists")

func newStore(rdb redis.UniversalClient) *store.Store { return store.New(rdb, ks, testkit.Logger()) }

func put(t *testing.T, s *store.Store, key string, m *councilsv1.SectorCouncil) {
	t.Helper()
	tx := s.Tx()
	tx.MustNotExist(key, errExists)
	if err := tx.Put(key, m); err != nil {
		t.Fatal(err)
	}
	tx.ZAdd(ks.Key("index"), 1, m.GetName())
	tx.Emit("council.created", m.GetName(), m)
	if _, err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestKeysCarryHashTag(t *testing.T) {
	if got := ks.Key("council", "x"); got != "kn:{storetest}:council:x" {
		t.Fatal(got)
	}
	if got := ks.Events(); got != "kn:{storetest}:events" {
		t.Fatal(got)
	}
}

func TestCommitWritesResourceIndexAndEventTogether(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		key := ks.Key("council", "a")
		c := &councilsv1.SectorCouncil{Name: "councils/a", DisplayName: "Fordon"}
		put(t, s, key, c)
		if c.GetEtag() == "" {
			t.Fatal("Put did not set an etag")
		}
		var got councilsv1.SectorCouncil
		if err := s.Get(ctx, key, &got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&got, c) {
			t.Fatalf("stored %v, read %v", c, &got)
		}
		if m, _ := rdb.ZRange(ctx, ks.Key("index"), 0, -1).Result(); len(m) != 1 || m[0] != "councils/a" {
			t.Fatalf("index = %v", m)
		}
		msgs, err := rdb.XRange(ctx, ks.Events(), "-", "+").Result()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("events = %v, %v", msgs, err)
		}
		if msgs[0].Values["type"] != "kompetensnav.storetest.v1.council.created" {
			t.Fatalf("event type %v", msgs[0].Values["type"])
		}
		var ev commonv1.Event
		if err := proto.Unmarshal([]byte(msgs[0].Values["event"].(string)), &ev); err != nil {
			t.Fatal(err)
		}
		var data councilsv1.SectorCouncil
		if err := ev.GetData().UnmarshalTo(&data); err != nil || ev.GetSubject() != "councils/a" || ev.GetId() == "" {
			t.Fatalf("envelope %v (%v)", &ev, err)
		}

		// A failed check writes nothing at all.
		before := testkit.KeyCount(t, rdb)
		evBefore, _ := rdb.XLen(ctx, ks.Events()).Result()
		tx := s.Tx()
		tx.MustNotExist(key, errExists)
		_ = tx.Put(ks.Key("council", "b"), &councilsv1.SectorCouncil{Name: "councils/b"})
		tx.ZAdd(ks.Key("index"), 2, "councils/b")
		tx.Emit("council.created", "councils/b", c)
		if _, err := tx.Commit(ctx); !errors.Is(err, errExists) {
			t.Fatalf("want the check's error, got %v", err)
		}
		if n := testkit.KeyCount(t, rdb); n != before {
			t.Fatalf("keys %d → %d after a failed check", before, n)
		}
		if n, _ := rdb.XLen(ctx, ks.Events()).Result(); n != evBefore {
			t.Fatal("event written by a failed write")
		}
	})
}

func TestGetMissing(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		err := newStore(rdb).Get(context.Background(), ks.Key("nope"), &councilsv1.SectorCouncil{})
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	})
}

func TestIdempotentCommitWritesOnce(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		idem := ks.Key("idem", "req-1")
		var written atomic.Int32
		var wg sync.WaitGroup
		names := make(chan string, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := "councils/c" + string(rune('a'+i%26)) + string(rune('a'+i/26))
				tx := s.Tx()
				tx.Idempotent(idem, name, "fp")
				_ = tx.Put(ks.Key("council", name), &councilsv1.SectorCouncil{Name: name})
				tx.ZAdd(ks.Key("index"), 1, name)
				r, err := tx.Commit(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if r == nil {
					written.Add(1)
					names <- name
				} else {
					names <- r.Name
				}
			}()
		}
		wg.Wait()
		close(names)
		if written.Load() != 1 {
			t.Fatalf("%d writes, want 1", written.Load())
		}
		first := ""
		for n := range names {
			if first == "" {
				first = n
			} else if n != first {
				t.Fatalf("replay returned %s, first wrote %s", n, first)
			}
		}
		if m, _ := rdb.ZRange(ctx, ks.Key("index"), 0, -1).Result(); len(m) != 1 {
			t.Fatalf("index has %d members", len(m))
		}
		ttl, _ := rdb.TTL(ctx, idem).Result()
		if ttl <= 0 || ttl > store.IdempotencyTTL {
			t.Fatalf("idempotency key TTL %v", ttl)
		}
		// Looked up before writing: the first result, for the same request.
		if r, err := s.Replayed(ctx, idem, "fp"); err != nil || r == nil || r.Name != first {
			t.Fatalf("Replayed: %v %v", r, err)
		}
		if r, err := s.Replayed(ctx, ks.Key("idem", "req-2"), "fp"); err != nil || r != nil {
			t.Fatalf("Replayed of a new key: %v %v", r, err)
		}
		if _, err := s.Replayed(ctx, idem, "other-fp"); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("Replayed of a reused id: %v", err)
		}
		// The same id with other content is a client error, not a replay.
		tx := s.Tx()
		tx.Idempotent(idem, "councils/other", "other-fp")
		if _, err := tx.Commit(ctx); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("reused request id: %v", err)
		}
	})
}

func TestUpdateIsAtomicUnderContention(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		key := ks.Key("council", "counter")
		put(t, s, key, &councilsv1.SectorCouncil{Name: "councils/counter"})
		// 40 concurrent read-modify-writes each append one member; with the
		// etag checked inside the write none may be lost.
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := store.Update(ctx, s, key, "councils/counter", "", func() *councilsv1.SectorCouncil { return &councilsv1.SectorCouncil{} },
					func(cur *councilsv1.SectorCouncil, tx *store.Tx) error {
						cur.MemberOrganisations = append(cur.MemberOrganisations, string(rune('A'+i)))
						return tx.Put(key, cur)
					})
				if err != nil && status.Code(err) != codes.Aborted {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		var got councilsv1.SectorCouncil
		if err := s.Get(ctx, key, &got); err != nil {
			t.Fatal(err)
		}
		// Update retries a bounded number of times; under this contention
		// some may give up with ABORTED, but every success must be kept.
		if len(got.MemberOrganisations) == 0 {
			t.Fatal("no update landed")
		}
		seen := map[string]bool{}
		for _, m := range got.MemberOrganisations {
			if seen[m] {
				t.Fatalf("member %s applied twice", m)
			}
			seen[m] = true
		}
	})
}

func TestUpdateWithStaleEtagIsAborted(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		key := ks.Key("council", "e")
		c := &councilsv1.SectorCouncil{Name: "councils/e"}
		put(t, s, key, c)
		_, err := store.Update(ctx, s, key, "councils/e", "stale", func() *councilsv1.SectorCouncil { return &councilsv1.SectorCouncil{} },
			func(cur *councilsv1.SectorCouncil, tx *store.Tx) error { return tx.Put(key, cur) })
		if status.Code(err) != codes.Aborted {
			t.Fatalf("stale etag: %v", err)
		}
		_, err = store.Update(ctx, s, key, "councils/e", c.GetEtag(), func() *councilsv1.SectorCouncil { return &councilsv1.SectorCouncil{} },
			func(cur *councilsv1.SectorCouncil, tx *store.Tx) error { return tx.Put(key, cur) })
		if err != nil {
			t.Fatalf("current etag: %v", err)
		}
	})
}

func TestStorageDownIsUnavailable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	err := newStore(rdb).Get(context.Background(), ks.Key("x"), &councilsv1.SectorCouncil{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("got %v", err)
	}
}

func TestUndecodableResourceIsDataLoss(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		key := ks.Key("council", "broken")
		if err := rdb.HSet(context.Background(), key, "pb", "\xff\xff\xff", "etag", "x").Err(); err != nil {
			t.Fatal(err)
		}
		err := newStore(rdb).Get(context.Background(), key, &councilsv1.SectorCouncil{})
		if status.Code(err) != codes.DataLoss {
			t.Fatalf("got %v", err)
		}
	})
}

// A second copy of the same write (what a client library sends when it
// retries after a read timeout) must not run again: it answers as the first
// did, and the effect, the index and the event happen once.
func TestResentWriteAppliesOnce(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		key := ks.Key("council", "resent")
		tx := s.Tx()
		tx.MustNotExist(key, errExists)
		if err := tx.Put(key, &councilsv1.SectorCouncil{Name: "councils/resent"}); err != nil {
			t.Fatal(err)
		}
		tx.HIncrBy(ks.Key("counts"), "councils", 1)
		tx.Emit("council.created", "councils/resent", &councilsv1.SectorCouncil{Name: "councils/resent"})
		for i := range 3 {
			if _, err := tx.Commit(ctx); err != nil {
				t.Fatalf("copy %d: %v", i+1, err)
			}
		}
		if n, _ := rdb.XLen(ctx, ks.Events()).Result(); n != 1 {
			t.Fatalf("%d events, want 1", n)
		}
		if n, _ := rdb.HGet(ctx, ks.Key("counts"), "councils").Int(); n != 1 {
			t.Fatalf("count %d, want 1", n)
		}
		// A different write with the same content is a new operation.
		tx2 := s.Tx()
		tx2.MustNotExist(key, errExists)
		_ = tx2.Put(key, &councilsv1.SectorCouncil{Name: "councils/resent"})
		if _, err := tx2.Commit(ctx); !errors.Is(err, errExists) {
			t.Fatalf("second operation: %v, want the exists check to fail", err)
		}
	})
}

// AtMost with HIncrBy keeps a total under a ceiling however many writers
// race for the room.
func TestAtMostHoldsCeilingUnderConcurrency(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		total := ks.Key("agreement", "a")
		errFull := status.Error(codes.FailedPrecondition, "full")
		var won, refused atomic.Int32
		var wg sync.WaitGroup
		for range 60 {
			wg.Go(func() {
				tx := s.Tx()
				tx.AtMost(total, "awarded", 30, 300, errFull)
				tx.HIncrBy(total, "awarded", 30)
				_, err := tx.Commit(ctx)
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, errFull):
					refused.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if won.Load() != 10 || refused.Load() != 50 {
			t.Fatalf("%d won, %d refused; want 10 and 50", won.Load(), refused.Load())
		}
		if n, _ := rdb.HGet(ctx, total, "awarded").Int(); n != 300 {
			t.Fatalf("total %d, want 300", n)
		}
	})
}

// FieldIs is a compare-and-set of one hash field: writers that each read
// the field and write it back one more lose no update, however many race,
// and an absent field is "".
func TestFieldIsLosesNoUpdateUnderConcurrency(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		key := ks.Key("facts", "p")
		var wg sync.WaitGroup
		for range 30 {
			wg.Go(func() {
				for {
					cur, err := rdb.HGet(ctx, key, "n").Result()
					if err != nil && !errors.Is(err, redis.Nil) {
						t.Error(err)
						return
					}
					n, _ := strconv.Atoi(cmp.Or(cur, "0"))
					tx := s.Tx()
					tx.FieldIs(key, "n", cur, nil)
					tx.HSet(key, "n", strconv.Itoa(n+1))
					if _, err := tx.Commit(ctx); err == nil {
						return
					} else if !errors.Is(err, store.ErrConflict) {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if n, _ := rdb.HGet(ctx, key, "n").Int(); n != 30 {
			t.Fatalf("n = %d after 30 increments, want 30", n)
		}
		tx := s.Tx()
		tx.FieldIs(key, "n", "29", nil)
		tx.HSet(key, "n", "x")
		if _, err := tx.Commit(ctx); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale compare-and-set: %v, want ErrConflict", err)
		}
	})
}

func TestAppendWritesStreamEntry(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		audit := ks.Key("audit")
		tx := s.Tx()
		tx.Append(audit, 0, "method", "/x.v1.S/Create", "record", []byte{0, 1, 2})
		tx.HSet(ks.Key("h"), "f", "v")
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		entries, err := rdb.XRange(ctx, audit, "-", "+").Result()
		if err != nil || len(entries) != 1 {
			t.Fatalf("%v %v", entries, err)
		}
		if entries[0].Values["method"] != "/x.v1.S/Create" || entries[0].Values["record"] != "\x00\x01\x02" {
			t.Fatalf("entry %v", entries[0].Values)
		}
		if v, _ := rdb.HGet(ctx, ks.Key("h"), "f").Result(); v != "v" {
			t.Fatalf("hset: %q", v)
		}
		bad := s.Tx()
		bad.Append(audit, 0, "odd")
		if _, err := bad.Commit(ctx); err == nil {
			t.Fatal("odd field list accepted")
		}
	})
}

// warmUp makes Redis know the write script, so that a resent copy runs it
// (on a Redis that does not, both copies get NOSCRIPT and the client loads
// the script once).
func warmUp(t *testing.T, s *store.Store) {
	t.Helper()
	tx := s.Tx()
	tx.HSet(ks.Key("warm"), "up", "1")
	if _, err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A Redis that hangs for a few seconds mid-write: the client library resends
// the script on a new connection, both copies reach Redis when it wakes, and
// the write happens once and is reported as done.
func TestWriteThroughAShortHangAppliesOnceAndSucceeds(t *testing.T) {
	srv := testkit.StartRedis(t)
	s := newStore(srv.Client)
	ctx := context.Background()
	key := ks.Key("council", "hung")
	warmUp(t, s)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := make(chan struct{})
	go func() {
		time.Sleep(5 * time.Second) // the hang being simulated, longer than the 3 s read timeout
		_ = srv.Resume()
		close(resumed)
	}()
	tx := s.Tx()
	tx.MustNotExist(key, errExists)
	_ = tx.Put(key, &councilsv1.SectorCouncil{Name: "councils/hung"})
	tx.Emit("council.created", "councils/hung", &councilsv1.SectorCouncil{Name: "councils/hung"})
	_, err := tx.Commit(ctx)
	<-resumed
	if err != nil {
		t.Fatalf("write through a 5 s hang: %v", err)
	}
	if n, _ := srv.Client.XLen(ctx, ks.Events()).Result(); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
	// The script did reach Redis twice: this test exercised the resend.
	info, _ := srv.Client.Info(ctx, "commandstats").Result()
	if !strings.Contains(info, "cmdstat_evalsha:calls=3,") {
		t.Fatalf("want the warm-up and two copies of the write:\n%s", info)
	}
}

// A hang that outlasts the caller: the call fails, and the copies that reach
// Redis when it wakes are refused, so a write reported as failed did not
// happen after all.
func TestWriteReportedAsFailedIsNotAppliedLater(t *testing.T) {
	srv := testkit.StartRedis(t)
	s := newStore(srv.Client)
	key := ks.Key("council", "late")
	warmUp(t, s)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := make(chan struct{})
	go func() {
		time.Sleep(4 * time.Second)
		_ = srv.Resume()
		close(resumed)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tx := s.Tx()
	_ = tx.Put(key, &councilsv1.SectorCouncil{Name: "councils/late"})
	tx.Emit("council.created", "councils/late", &councilsv1.SectorCouncil{Name: "councils/late"})
	_, err := tx.Commit(ctx)
	if c := status.Code(err); c != codes.DeadlineExceeded && c != codes.Unavailable {
		t.Fatalf("write during a hang longer than its deadline: %v", err)
	}
	<-resumed
	bg := context.Background()
	// Once Redis answers again, what queued has run (or been refused).
	if err := srv.Client.Ping(bg).Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := srv.Client.Exists(bg, key).Result(); n != 0 {
		t.Fatal("a write reported as failed was applied when Redis woke")
	}
	if n, _ := srv.Client.XLen(bg, ks.Events()).Result(); n != 0 {
		t.Fatalf("%d events of a write reported as failed", n)
	}
}

// RangeEmpty refuses a write while the index holds a member in the range.
func TestRangeEmpty(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		s := newStore(rdb)
		idx := ks.Key("dates")
		rdb.ZAdd(ctx, idx, redis.Z{Member: "20260301\x01a"}, redis.Z{Member: "20251101\x01b"})
		errRecent := status.Error(codes.FailedPrecondition, "recent")
		tx := s.Tx()
		tx.RangeEmpty(idx, "[20260101", "+", errRecent)
		tx.HSet(ks.Key("h"), "f", "1")
		if _, err := tx.Commit(ctx); !errors.Is(err, errRecent) {
			t.Fatalf("a member in range: %v", err)
		}
		tx = s.Tx()
		tx.RangeEmpty(idx, "[20260401", "+", errRecent)
		tx.HSet(ks.Key("h"), "f", "1")
		if _, err := tx.Commit(ctx); err != nil {
			t.Fatalf("no member in range: %v", err)
		}
	})
}
