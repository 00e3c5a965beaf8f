package procurement_test

import (
	"strings"
	"testing"
	"time"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/kompetensnav/kompetensnav/services/procurement"
	"github.com/redis/go-redis/v9"
)

// councilsStream writes events to the councils service's stream as the
// councils service does (store.Tx.Emit in its keyspace).
type councilsStream struct {
	st  *store.Store
	rdb redis.UniversalClient
	t   *testing.T
}

func (c councilsStream) emit(typ string, n *councilsv1.CompetenceNeed) {
	c.t.Helper()
	tx := c.st.Tx()
	tx.Emit(typ, n.GetName(), n)
	if _, err := tx.Commit(ctx); err != nil {
		c.t.Fatal(err)
	}
}

// redeliver appends the last entry of the stream again, as it is: the same
// event (same id) delivered twice.
func (c councilsStream) redeliver() {
	c.t.Helper()
	last, err := c.rdb.XRevRangeN(ctx, procurement.CouncilsEvents, "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		c.t.Fatal(err)
	}
	if err := c.rdb.XAdd(ctx, &redis.XAddArgs{Stream: procurement.CouncilsEvents, Values: last[0].Values}).Err(); err != nil {
		c.t.Fatal(err)
	}
}

func queuedNames(t *testing.T, e env) []string {
	t.Helper()
	list, err := e.c.ListQueuedNeeds(ctx, &procurementv1.ListQueuedNeedsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, q := range list.GetQueuedNeeds() {
		out = append(out, strings.TrimPrefix(q.GetNeed(), "councils/"))
	}
	return out
}

func TestQueueFollowsCouncilsEvents(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		activeAgreement(t, e, "teknik", rank, 1_000_000)
		cs := councilsStream{st: store.New(e.rdb, store.Keyspace("councils"), testkit.Logger()), rdb: e.rdb, t: t}
		approved := func(name string, p councilsv1.Priority, at time.Time) *councilsv1.CompetenceNeed {
			n := &councilsv1.CompetenceNeed{Name: "councils/" + name, Title: "Behov " + name, Headcount: 20, Priority: p,
				State: councilsv1.CompetenceNeed_STATE_APPROVED, UpdateTime: ts(at), NeededBy: day(2026, 10, 1),
				Municipalities: []string{"1480"}}
			e.councils.put(n.GetName(), councilsv1.CompetenceNeed_STATE_APPROVED, "1480")
			cs.emit("need.approved", n)
			return n
		}
		approved("handel/needs/lager", councilsv1.Priority_PRIORITY_LOW, start)
		approved("fordon/needs/el", councilsv1.Priority_PRIORITY_MEDIUM, start.Add(time.Minute))
		approved("teknik/needs/cnc", councilsv1.Priority_PRIORITY_CRITICAL, start.Add(2*time.Minute))
		cs.redeliver() // the same approval twice: still one entry
		e.background(t)
		want := "teknik/needs/cnc fordon/needs/el handel/needs/lager"
		eventually(t, "the queue holds three needs by priority", func() bool { return strings.Join(queuedNames(t, e), " ") == want })

		// A later approval of the same priority goes behind the earlier.
		approved("transport/needs/truck", councilsv1.Priority_PRIORITY_MEDIUM, start.Add(3*time.Minute))
		want = "teknik/needs/cnc fordon/needs/el transport/needs/truck handel/needs/lager"
		eventually(t, "the fourth need is queued behind its peer", func() bool { return strings.Join(queuedNames(t, e), " ") == want })
		list, _ := e.c.ListQueuedNeeds(ctx, &procurementv1.ListQueuedNeedsRequest{Filter: `council = "councils/fordon"`})
		if len(list.GetQueuedNeeds()) != 1 {
			t.Fatalf("filtered by council: %v", list)
		}
		q := list.GetQueuedNeeds()[0]
		if q.GetTitle() != "Behov fordon/needs/el" || q.GetCouncil() != "councils/fordon" || q.GetHeadcount() != 20 ||
			q.GetNeededBy().GetMonth() != 10 || !q.GetApproveTime().AsTime().Equal(start.Add(time.Minute)) {
			t.Fatalf("queued need %v", q)
		}

		// An award takes its need out at once (in the award's own step).
		c := mustCallOff(t, e, callOffReq("cnc", "frameworkAgreements/teknik", "svets", "councils/teknik/needs/cnc", 50_000))
		if _, err := accept(e, c.GetName(), ""); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(queuedNames(t, e), " "); got != "fordon/needs/el transport/needs/truck handel/needs/lager" {
			t.Fatalf("after the award: %s", got)
		}
		// Rejected, closed and procurement-started needs leave it.
		cs.emit("need.closed", &councilsv1.CompetenceNeed{Name: "councils/handel/needs/lager"})
		cs.emit("need.procurement_started", &councilsv1.CompetenceNeed{Name: "councils/transport/needs/truck"})
		eventually(t, "closed and started needs leave", func() bool { return strings.Join(queuedNames(t, e), " ") == "fordon/needs/el" })
		// A late or replayed approval cannot bring a need back.
		cs.emit("need.approved", &councilsv1.CompetenceNeed{Name: "councils/handel/needs/lager", Title: "igen",
			Priority: councilsv1.Priority_PRIORITY_CRITICAL, State: councilsv1.CompetenceNeed_STATE_APPROVED})
		cs.emit("need.approved", &councilsv1.CompetenceNeed{Name: "councils/bygg/needs/ny", Title: "Ny", Priority: councilsv1.Priority_PRIORITY_LOW})
		eventually(t, "the new one is queued", func() bool { return strings.Join(queuedNames(t, e), " ") == "fordon/needs/el bygg/needs/ny" })
	})
}
