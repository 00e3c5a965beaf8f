package councils_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func listNames(t *testing.T, e env, parent, filter, order string) string {
	t.Helper()
	resp, err := e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: parent, Filter: filter, OrderBy: order})
	if err != nil {
		t.Fatalf("%q: %v", filter, err)
	}
	var out []string
	for _, n := range resp.GetNeeds() {
		out = append(out, n.GetName()[strings.LastIndex(n.GetName(), "/")+1:])
	}
	return strings.Join(out, ",")
}

// A need that names no municipality is for all of its council's, and is
// listed by its council's sector: changing the council moves it in the
// indexes too.
func TestCouncilChangesReindexItsNeeds(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		all := need(c.GetName())
		all.NeedId, all.Need.Municipalities = "all", nil
		own := need(c.GetName())
		own.NeedId, own.Need.Municipalities = "own", []string{"1480"}
		mustNeed(t, e, all)
		mustNeed(t, e, own)
		if got := listNames(t, e, "councils/-", `municipalities:"1860"`, ""); got != "" {
			t.Fatalf("before: %q", got)
		}
		// Laholm (1860) joins the council, and the council changes sector.
		c.Municipalities = append(c.Municipalities, "1860")
		c.Sector = commonv1.Sector_SECTOR_TECH_INDUSTRY
		if _, err := e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: c,
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"municipalities", "sector"}}}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ filter, want string }{
			{`municipalities:"1860"`, "all"},
			{`municipalities:"1480"`, "all,own"},
			{`sector = SECTOR_TECH_INDUSTRY`, "all,own"},
			{`sector = SECTOR_VEHICLE_INDUSTRY`, ""},
		} {
			if got := listNames(t, e, "councils/-", tc.filter, ""); got != tc.want {
				t.Errorf("%s: %q, want %q", tc.filter, got, tc.want)
			}
		}
	})
}

// 30 needs with every field at its declared maximum (four-byte characters)
// are more than gRPC's 4 MiB: the page stops short with a next token, and
// every need is still listed once.
func TestListOfMaximalNeedsPagesInsteadOfFailing(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		wide := council("wide", commonv1.Sector_SECTOR_RETAIL)
		c, err := e.c.CreateCouncil(ctx, wide)
		if err != nil {
			t.Fatal(err)
		}
		emoji := func(n int) string { return strings.Repeat("😀", n) }
		skills := make([]string, 100)
		for i := range skills {
			skills[i] = emoji(200)
		}
		for i := range 30 {
			r := need(c.GetName())
			r.NeedId = fmt.Sprintf("max%02d", i)
			r.Need.Title, r.Need.Description, r.Need.Rationale = emoji(200), emoji(5000), emoji(10000)
			r.Need.Skills = skills
			mustNeed(t, e, r)
		}
		var total, pages int
		token := ""
		for {
			resp, err := e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: "councils/-", PageToken: token})
			if err != nil {
				t.Fatalf("page %d: %v", pages, err)
			}
			pages++
			total += len(resp.GetNeeds())
			if proto.Size(resp) >= 4<<20 {
				t.Fatalf("page of %d bytes", proto.Size(resp))
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if total != 30 || pages < 2 {
			t.Fatalf("%d needs in %d pages", total, pages)
		}
	})
}

// Data written before the indexes existed (councils and needs in the
// first version's sorted sets) gains them at start, once.
func TestMigrateIndexesDataWrittenTheOldWay(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ks := councils.Keyspace
		now := timestamppb.Now()
		for i, id := range []string{"fordon", "handel"} {
			c := &councilsv1.SectorCouncil{Name: "councils/" + id, DisplayName: id, Sector: commonv1.Sector(1 + i),
				Municipalities: []string{"1480", "1440"}, CreateTime: now, Etag: "e"}
			b, _ := proto.Marshal(c)
			rdb.HSet(ctx, ks.Key("council", id), "pb", b, "etag", "e")
			rdb.ZAdd(ctx, ks.Key("councils"), redis.Z{Score: float64(i), Member: id})
			for j := range 3 {
				n := &councilsv1.CompetenceNeed{Name: fmt.Sprintf("councils/%s/needs/n%d", id, j), Title: "t", Headcount: 1,
					State: councilsv1.CompetenceNeed_State(1 + j), CreateTime: timestamppb.New(now.AsTime().Add(1e9 * 0)), Etag: "e"}
				b, _ := proto.Marshal(n)
				rdb.HSet(ctx, ks.Key("need", id, fmt.Sprintf("n%d", j)), "pb", b, "etag", "e")
				rdb.ZAdd(ctx, ks.Key("needs", id), redis.Z{Score: float64(j), Member: fmt.Sprintf("n%d", j)})
				rdb.ZAdd(ctx, ks.Key("needs"), redis.Z{Score: float64(j), Member: n.GetName()})
			}
		}
		svc, err := councils.New(councils.Options{Redis: rdb, Logger: testkit.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second start finds the indexes current
			if err := svc.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		conn := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) })
		e := env{c: councilsv1.NewCouncilsServiceClient(conn), rdb: rdb}
		if got := listNames(t, e, "councils/-", "", ""); strings.Count(got, ",") != 5 {
			t.Fatalf("all needs: %q", got)
		}
		if got := listNames(t, e, "councils/handel", "state = STATE_SUBMITTED", ""); got != "n1" {
			t.Fatalf("handel's submitted: %q", got)
		}
		resp, err := e.c.ListCouncils(ctx, &councilsv1.ListCouncilsRequest{Filter: "sector = SECTOR_RETAIL"})
		if err != nil || len(resp.GetCouncils()) != 1 || resp.GetTotalSize() != 1 {
			t.Fatalf("%v %v", resp, err)
		}
		for _, old := range []string{ks.Key("councils"), ks.Key("needs"), ks.Key("needs", "fordon")} {
			if n, _ := rdb.Exists(ctx, old).Result(); n != 0 {
				t.Errorf("old index %s still there", old)
			}
		}
		if v, _ := rdb.Get(ctx, ks.Key("migration", "indexes")).Result(); v != "1" {
			t.Fatalf("migration version %q", v)
		}
	})
}

// roundTrips counts the commands and pipelines a client sends to Redis.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !connectionSetup(cmd.Name()) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !connectionSetup(cmds[0].Name()) {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// connectionSetup: what a new pooled connection sends first, not the page.
func connectionSetup(name string) bool { return name == "hello" || name == "client" || name == "auth" }

// A page of ListNeeds costs the same few Redis round trips with 12 needs
// as with 400: its council (for a named parent), the index sizes, one range
// of an index, the needs and their councils. Before the indexes it was one
// round trip per need in the collection.
func TestListNeedsRoundTripsDoNotGrowWithTheCollection(t *testing.T) {
	rdb := testkit.Redis(t)
	trips := &roundTrips{}
	rdb.AddHook(trips)
	svc, err := councils.New(councils.Options{Redis: rdb, Logger: testkit.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	client := councilsv1.NewCouncilsServiceClient(testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) }))
	for _, c := range []string{"fordon", "handel"} {
		if _, err := svc.CreateCouncil(ctx, council(c, commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)); err != nil {
			t.Fatal(err)
		}
	}
	created := 0
	grow := func(to int) {
		for ; created < to; created++ {
			r := need("councils/" + []string{"fordon", "handel"}[created%2])
			r.Need.NeededBy = nil
			n, err := svc.CreateNeed(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if created%4 < 2 {
				if _, err := svc.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: n.GetName()}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	cases := []struct{ parent, filter string }{
		{"councils/fordon", ""},
		{"councils/-", ""},
		{"councils/-", "state = STATE_SUBMITTED"},
		{"councils/fordon", "state = STATE_SUBMITTED AND priority = PRIORITY_MEDIUM"},
		{"councils/-", "state != STATE_DRAFT"},
	}
	measure := func() []int64 {
		out := make([]int64, len(cases))
		for i, c := range cases {
			before := trips.n.Load()
			resp, err := client.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: c.parent, Filter: c.filter, PageSize: 3})
			if err != nil || len(resp.GetNeeds()) != 3 {
				t.Fatalf("%+v: %d needs, %v", c, len(resp.GetNeeds()), err)
			}
			out[i] = trips.n.Load() - before
		}
		return out
	}
	grow(12)
	small := measure()
	grow(400)
	large := measure()
	for i, c := range cases {
		if small[i] != large[i] || large[i] > 6 {
			t.Errorf("%s %q: %d round trips with 12 needs, %d with 400 (want the same, at most 6)", c.parent, c.filter, small[i], large[i])
		}
	}
	t.Logf("round trips per page: %v", large)
}

// total_size is an exact count or not given: without a filter and with one
// indexed term it counts, otherwise it is 0 (never an upper bound that
// would read as a count).
func TestListTotalSizeIsExactOrUnset(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		mustCouncil(t, e, "handel", commonv1.Sector_SECTOR_RETAIL)
		for i := range 6 {
			n := mustNeed(t, e, need([]string{"councils/fordon", "councils/handel"}[i%2]))
			if i < 2 {
				if _, err := e.c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: n.GetName()}); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, c := range []struct {
			parent, filter string
			total          int32
		}{
			{"councils/-", "", 6},
			{"councils/fordon", "", 3},
			{"councils/-", "state = STATE_SUBMITTED", 2},
			{"councils/-", `sector = SECTOR_RETAIL`, 3},
			{"councils/fordon", "state = STATE_SUBMITTED", 0},
			{"councils/-", "state != STATE_DRAFT", 0},
			{"councils/-", `state = STATE_SUBMITTED AND municipalities:"1480"`, 0},
		} {
			resp, err := e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: c.parent, Filter: c.filter, PageSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetTotalSize() != c.total {
				t.Errorf("%s %q: total_size %d, want %d", c.parent, c.filter, resp.GetTotalSize(), c.total)
			}
		}
		resp, err := e.c.ListCouncils(ctx, &councilsv1.ListCouncilsRequest{Filter: `display_name = "Kompetensråd fordon"`})
		if err != nil || len(resp.GetCouncils()) != 1 || resp.GetTotalSize() != 0 {
			t.Fatalf("councils by a scanned filter: %d, total_size %d, %v", len(resp.GetCouncils()), resp.GetTotalSize(), err)
		}
	})
}
