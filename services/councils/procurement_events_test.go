package councils_test

import (
	"context"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
)

// An awarded call-off moves its need APPROVED → IN_PROCUREMENT, once,
// however often the event comes, and leaves needs in any other state as
// they are.
func TestAwardedCallOffMovesTheNeedIntoProcurementOnce(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		clk := newClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
		// The procurement stream in a Redis of its own, as when the
		// services are deployed apart (-procurement-events-redis).
		procurementRedis := testkit.Embedded(t)
		svc, err := councils.New(councils.Options{Redis: rdb, Logger: testkit.Logger(), Now: clk.now, ProcurementEvents: procurementRedis})
		if err != nil {
			t.Fatal(err)
		}
		conn := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) }, testkit.Guarded(rdb, councils.Policy))
		e := env{c: councilsv1.NewCouncilsServiceClient(conn), rdb: rdb, clock: clk}
		mustCouncil(t, e, "teknik", commonv1.Sector_SECTOR_TECH_INDUSTRY)
		approved := needIn("submit", "approve")(t, e, "teknik")
		closed := needIn("submit", "approve")(t, e, "teknik")
		if _, err := e.c.CloseNeed(ctx, &councilsv1.CloseNeedRequest{Name: closed, Reason: "Täcks av annat"}); err != nil {
			t.Fatal(err)
		}

		// Procurement's side: call_off.awarded in its stream.
		procurement := store.New(procurementRedis, store.Keyspace("procurement"), testkit.Logger())
		award := func(callOff, need string) {
			tx := procurement.Tx()
			c := &procurementv1.CallOff{Name: callOff, Need: need, Provider: "providers/lernia", State: procurementv1.CallOff_STATE_AWARDED}
			tx.Emit("call_off.awarded", c.GetName(), c)
			if _, err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		award("callOffs/a", approved)
		award("callOffs/b", closed)
		award("callOffs/c", "councils/teknik/needs/finns-inte")
		// The first event once more, as it was (same event id).
		first, err := procurementRedis.XRange(ctx, councils.ProcurementEvents, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		procurementRedis.XAdd(ctx, &redis.XAddArgs{Stream: councils.ProcurementEvents, Values: first[0].Values})
		// And a second call-off for the same need.
		award("callOffs/d", approved)

		bg := events.Start(context.Background(), testkit.Logger(), svc.Background()...)
		defer bg.Stop()
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, err := e.c.GetNeed(ctx, &councilsv1.GetNeedRequest{Name: approved})
			if err != nil {
				t.Fatal(err)
			}
			if n.GetState() == councilsv1.CompetenceNeed_STATE_IN_PROCUREMENT {
				if n.GetStateReason() != "callOffs/a awarded to providers/lernia" {
					t.Fatalf("state reason %q", n.GetStateReason())
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 5 s the need is %v", n.GetState())
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Every entry is handled (none pending, none dead-lettered) ...
		for time.Now().Before(deadline) {
			infos, err := events.Inspect(ctx, procurementRedis, councils.ProcurementEvents)
			if err == nil && len(infos) == 1 && len(infos[0].Groups) == 1 && infos[0].Groups[0].Lag == 0 && infos[0].Groups[0].Pending == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		infos, _ := events.Inspect(ctx, procurementRedis, councils.ProcurementEvents)
		if g := infos[0].Groups[0]; g.Lag != 0 || g.Pending != 0 || g.DeadLetters != 0 {
			t.Fatalf("group %+v", g)
		}
		// ... and the need moved exactly once; the closed one stayed closed.
		moved := 0
		for _, typ := range eventTypes(t, e) {
			if typ == "need.procurement_started" {
				moved++
			}
		}
		if moved != 1 {
			t.Fatalf("%d moves into procurement, want 1", moved)
		}
		if n, _ := e.c.GetNeed(ctx, &councilsv1.GetNeedRequest{Name: closed}); n.GetState() != councilsv1.CompetenceNeed_STATE_CLOSED {
			t.Fatalf("closed need is %v", n.GetState())
		}
	})
}
