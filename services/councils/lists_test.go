package councils_test

import (
	"fmt"
	"strings"
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
