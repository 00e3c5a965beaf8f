package councils_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// companiesStream plays the companies service: it records notice events
// on kn:{companies}:events exactly as that service's writes do (store.Tx
// Emit, the same envelope), which is all the councils service sees of it.
type companiesStream struct {
	st  *store.Store
	seq int
}

func (c *companiesStream) notice(t *testing.T, typ, council, municipality string, kind companiesv1.Notice_Kind, affected int32, on *date.Date) *companiesv1.Notice {
	t.Helper()
	c.seq++
	n := &companiesv1.Notice{Name: fmt.Sprintf("companies/c%d/notices/n%d", c.seq, c.seq), Kind: kind, AffectedEmployees: affected,
		NoticeDate: on, Council: council, Municipality: municipality,
		CreateTime: timestamppb.New(time.Date(2026, 1, 1, 0, 0, c.seq, 0, time.UTC))}
	c.emit(t, typ, n)
	return n
}

func (c *companiesStream) emit(t *testing.T, typ string, n *companiesv1.Notice) {
	t.Helper()
	tx := c.st.Tx()
	tx.Emit(typ, n.GetName(), n)
	if _, err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func rows(s *councilsv1.DemandSignal) string {
	var out []string
	for _, r := range s.GetRows() {
		out = append(out, fmt.Sprintf("%s %s %d %d", r.GetMunicipality(), strings.TrimPrefix(r.GetKind().String(), "KIND_"), r.GetNotices(), r.GetAffectedEmployees()))
	}
	return strings.Join(out, "\n")
}

// The councils service follows the companies service's notice events into
// each council's demand signal: totals per municipality and kind over the
// last 12 months, each event applied once, whatever the order a withdrawal
// arrives in.
func TestDemandSignal(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		clk := newClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
		svc, err := councils.New(councils.Options{Redis: rdb, Logger: testkit.Logger(), Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		bg := events.Start(context.Background(), testkit.Logger(), svc.Background()...)
		t.Cleanup(bg.Stop)
		conn := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) }, testkit.Guarded(rdb, councils.Policy))
		e := env{c: councilsv1.NewCouncilsServiceClient(conn), rdb: rdb, clock: clk}
		mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		mustCouncil(t, e, "handel", commonv1.Sector_SECTOR_RETAIL)

		cs := &companiesStream{st: store.New(rdb, store.Keyspace("companies"), testkit.Logger())}
		const created, deleted = "notice.created", "notice.deleted"
		f, furlough, redundancy, layoff := "councils/fordon", companiesv1.Notice_KIND_FURLOUGH, companiesv1.Notice_KIND_REDUNDANCY, companiesv1.Notice_KIND_LAYOFF
		cs.notice(t, created, f, "1480", furlough, 120, &date.Date{Year: 2026, Month: 3, Day: 2})
		cs.notice(t, created, f, "1480", redundancy, 40, &date.Date{Year: 2026, Month: 4, Day: 2})
		cs.notice(t, created, f, "1480", furlough, 30, &date.Date{Year: 2026, Month: 11, Day: 25})  // today
		cs.notice(t, created, f, "1440", furlough, 7, &date.Date{Year: 2025, Month: 11, Day: 25})   // 12 months ago to the day
		cs.notice(t, created, f, "1440", furlough, 500, &date.Date{Year: 2025, Month: 11, Day: 24}) // a day too old
		cs.notice(t, created, "councils/handel", "1480", redundancy, 15, &date.Date{Year: 2026, Month: 5, Day: 5})
		gone := cs.notice(t, created, f, "1480", layoff, 99, &date.Date{Year: 2026, Month: 7, Day: 1})
		cs.emit(t, deleted, gone)
		// Withdrawn before its creation is applied (two replicas of the
		// councils service may take the two events).
		early := &companiesv1.Notice{Name: "companies/x/notices/early", Kind: layoff, AffectedEmployees: 66, Council: f, Municipality: "1480",
			NoticeDate: &date.Date{Year: 2026, Month: 8, Day: 1}, CreateTime: timestamppb.New(time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC))}
		cs.emit(t, deleted, early)
		cs.emit(t, created, early)
		// The same event twice (redelivered, or replayed from the dead
		// letters): applied once.
		msgs, err := rdb.XRange(ctx, "kn:{companies}:events", "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "kn:{companies}:events", Values: msgs[0].Values}).Err(); err != nil {
			t.Fatal(err)
		}
		// Events of other kinds and unknown councils are passed over.
		cs.notice(t, "company.created", f, "1480", furlough, 1000, &date.Date{Year: 2026, Month: 3, Day: 2})
		cs.notice(t, created, "", "1480", furlough, 1000, &date.Date{Year: 2026, Month: 3, Day: 2})
		// The last event: once handel shows it, everything before is applied
		// (one consumer takes the stream in order).
		cs.notice(t, created, "councils/handel", "1481", furlough, 1, &date.Date{Year: 2026, Month: 6, Day: 6})
		waitFor(t, func() bool {
			s, err := e.c.GetDemandSignal(ctx, &councilsv1.GetDemandSignalRequest{Name: "councils/handel"})
			return err == nil && strings.Contains(rows(s), "1481 FURLOUGH 1 1")
		})

		s, err := e.c.GetDemandSignal(ctx, &councilsv1.GetDemandSignalRequest{Name: "councils/fordon"})
		if err != nil {
			t.Fatal(err)
		}
		want := "1440 FURLOUGH 1 7\n1480 REDUNDANCY 1 40\n1480 FURLOUGH 2 150"
		if got := rows(s); got != want {
			t.Fatalf("fordon's demand signal:\n%s\nwant\n%s", got, want)
		}
		if s.GetCouncil() != "councils/fordon" || s.GetStartDate().GetYear() != 2025 || s.GetStartDate().GetDay() != 25 ||
			s.GetEndDate().GetYear() != 2026 || s.GetEndDate().GetMonth() != 11 || s.GetEndDate().GetDay() != 25 {
			t.Fatalf("window %v – %v", s.GetStartDate(), s.GetEndDate())
		}
		// A month later the oldest notice has left the window.
		clk.set(time.Date(2026, 12, 26, 9, 0, 0, 0, time.UTC))
		s, err = e.c.GetDemandSignal(ctx, &councilsv1.GetDemandSignalRequest{Name: "councils/fordon"})
		if err != nil || rows(s) != "1480 REDUNDANCY 1 40\n1480 FURLOUGH 2 150" {
			t.Fatalf("a month later: %q, %v", rows(s), err)
		}
		_, err = e.c.GetDemandSignal(ctx, &councilsv1.GetDemandSignalRequest{Name: "councils/nowhere"})
		wantCode(t, err, codes.NotFound)
		_, err = e.c.GetDemandSignal(ctx, &councilsv1.GetDemandSignalRequest{Name: "fordon"})
		testkit.WantBadRequest(t, err, "name")
	})
}

// waitFor polls cond until it holds, for up to 20 s (the consumer runs
// beside the test).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
