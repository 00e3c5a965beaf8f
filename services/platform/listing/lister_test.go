package listing_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"go.einride.tech/aip/filtering"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The collection under test: councils, with few distinct values per field
// so that sort keys tie often and the tiebreak and the name must decide.
const ks = store.Keyspace("listtest")

type council = *councilsv1.SectorCouncil

var index = &listing.Index[council]{
	Collection: "councils",
	Name:       council.GetName,
	Orders: map[string]func(council) string{
		"create_time":  func(c council) string { return listing.TimeKey(c.GetCreateTime()) },
		"display_name": func(c council) string { return listing.TextKey(c.GetDisplayName()) },
		"sector":       func(c council) string { return listing.IntKey(int64(c.GetSector()), 2) },
	},
	Tiebreak: func(c council) string { return listing.TimeKey(c.GetCreateTime()) },
	Fields: map[string]func(council) []string{
		"sector":         func(c council) []string { return []string{c.GetSector().String()} },
		"municipalities": council.GetMunicipalities,
	},
}

var decls = func() *filtering.Declarations {
	d, err := filtering.NewDeclarations(filtering.DeclareStandardFunctions(),
		filtering.DeclareEnumIdent("sector", commonv1.Sector(0).Type()),
		filtering.DeclareIdent("municipalities", filtering.TypeList(filtering.TypeString)),
		filtering.DeclareIdent("display_name", filtering.TypeString))
	if err != nil {
		panic(err)
	}
	return d
}()

func values(c council, field string) []string {
	switch field {
	case "sector":
		return []string{c.GetSector().String()}
	case "municipalities":
		return c.GetMunicipalities()
	case "display_name":
		return []string{c.GetDisplayName()}
	}
	return nil
}

func key(name string) string { return ks.Key("council", name) }

type fixture struct {
	st    *store.Store
	rdb   redis.UniversalClient
	l     *listing.Lister[council]
	trips *atomic.Int64
}

// roundTrips counts the commands and pipelines sent to Redis.
type roundTrips struct{ n *atomic.Int64 }

func (h roundTrips) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}
func (h roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd.Name()) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !handshake(cmds[0].Name()) {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// handshake tells the commands a new pooled connection starts with: not
// the page's doing.
func handshake(name string) bool { return name == "hello" || name == "client" || name == "auth" }

func newFixture(t testing.TB, rdb redis.UniversalClient) *fixture {
	st := store.New(rdb, ks, testkit.Logger())
	f := &fixture{st: st, rdb: rdb, trips: &atomic.Int64{}}
	rdb.AddHook(roundTrips{f.trips})
	f.l = &listing.Lister[council]{
		Index: index, Store: st, Keyspace: ks, Tokens: listing.NewTokens("k"), Decls: decls, Values: values,
		DefaultOrder: "create_time",
		Load: func(ctx context.Context, names []string) ([]council, error) {
			keys := make([]string, len(names))
			for i, n := range names {
				keys[i] = key(n)
			}
			return store.Load(ctx, st, keys, func() council { return &councilsv1.SectorCouncil{} })
		},
		Size: func(c council) int { return proto.Size(c) },
	}
	return f
}

var municipalityPool = []string{"1480", "1481", "1482", "1440", "1384"}

func randomCouncil(rng *rand.Rand, i int) council {
	var ms []string
	for _, m := range municipalityPool {
		if rng.IntN(3) == 0 {
			ms = append(ms, m)
		}
	}
	return &councilsv1.SectorCouncil{
		Name:           fmt.Sprintf("councils/c%04d", i),
		DisplayName:    []string{"Fordon", "fordon", "Handel", "Besöksnäring", "Ål", "Älv", "Örn", "a"}[rng.IntN(8)],
		Sector:         commonv1.Sector(1 + rng.IntN(3)),
		Municipalities: ms,
		// Few distinct times: the tiebreak ties too, and the name decides.
		CreateTime: timestamppb.New(baseTime.Add(time.Duration(rng.IntN(6)) * time.Hour)),
	}
}

var baseTime = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func (f *fixture) put(t testing.TB, c council) {
	t.Helper()
	tx := f.st.Tx()
	if err := tx.Put(key(c.GetName()), c); err != nil {
		t.Fatal(err)
	}
	tx.SetIndex(key(c.GetName()), index.Entries(ks, c))
	if _, err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) del(t testing.TB, name string) {
	t.Helper()
	tx := f.st.Tx()
	tx.DropIndex(key(name))
	tx.Del(key(name))
	if _, err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// reference is the full sort a walk of pages must return: by the order's
// sort key (reversed with desc), then tiebreak and name ascending.
func reference(all []council, order string, desc bool) []council {
	out := slices.Clone(all)
	slices.SortFunc(out, func(a, b council) int {
		c := cmp.Compare(index.Orders[order](a), index.Orders[order](b))
		if desc {
			c = -c
		}
		if c != 0 {
			return c
		}
		if c := cmp.Compare(index.Tiebreak(a), index.Tiebreak(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.GetName(), b.GetName())
	})
	return out
}

// walk lists every page of req and returns the names in order.
func (f *fixture) walk(t testing.TB, req listing.Request) []string {
	t.Helper()
	var names []string
	for pages := 0; ; pages++ {
		p, err := f.l.List(context.Background(), req)
		if err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
		for _, c := range p.Items {
			names = append(names, c.GetName())
		}
		if p.Next == "" {
			return names
		}
		if pages > 10_000 {
			t.Fatal("pages do not end")
		}
		req.PageToken = p.Next
	}
}

func names(cs []council) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.GetName()
	}
	return out
}

func TestPagesFollowTheFullSortInEveryOrder(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		f := newFixture(t, rdb)
		rng := rand.New(rand.NewPCG(7, 11))
		var all []council
		for i := range 120 {
			c := randomCouncil(rng, i)
			all = append(all, c)
			f.put(t, c)
		}
		for _, order := range []string{"create_time", "display_name", "sector"} {
			for _, desc := range []bool{false, true} {
				orderBy := order
				if desc {
					orderBy += " desc"
				}
				want := names(reference(all, order, desc))
				for _, size := range []int32{1, 7, 1000} {
					got := f.walk(t, listing.Request{Method: "List", OrderBy: orderBy, PageSize: size})
					if !slices.Equal(got, want) {
						t.Fatalf("order %q, page size %d:\n got %v\nwant %v", orderBy, size, got, want)
					}
				}
			}
		}
	})
}

// Items added and removed between pages never make a surviving item
// appear twice or vanish.
func TestPagesStableUnderInsertsAndDeletes(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		f := newFixture(t, rdb)
		rng := rand.New(rand.NewPCG(3, 5))
		for i := range 200 {
			f.put(t, randomCouncil(rng, i))
		}
		next := 1000
		for _, orderBy := range []string{"create_time", "display_name desc", "sector"} {
			alive := map[string]bool{}
			for _, n := range f.walk(t, listing.Request{Method: "List"}) {
				alive[n] = true
			}
			survivors := maps.Clone(alive)
			seen := map[string]int{}
			req := listing.Request{Method: "List", OrderBy: orderBy, PageSize: 9}
			for {
				p, err := f.l.List(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range p.Items {
					seen[c.GetName()]++
				}
				// Between pages: delete two items and add two new ones.
				for range 2 {
					for name := range alive {
						delete(alive, name)
						delete(survivors, name)
						f.del(t, name)
						break
					}
					c := randomCouncil(rng, next)
					next++
					f.put(t, c)
					alive[c.GetName()] = true
				}
				if p.Next == "" {
					break
				}
				req.PageToken = p.Next
			}
			for name, n := range seen {
				if n > 1 {
					t.Fatalf("%s: %s returned %d times", orderBy, name, n)
				}
			}
			for name := range survivors {
				if seen[name] != 1 {
					t.Fatalf("%s: %s, present throughout, was returned %d times", orderBy, name, seen[name])
				}
			}
		}
	})
}

// Indexed filters, scanned filters and mixes return exactly what evaluating
// the filter over every item returns, in order, across short pages.
func TestFiltersMatchEvaluatingEverything(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		f := newFixture(t, rdb)
		f.l.ScanFactor = 2 // small, so scanned filters return short pages
		rng := rand.New(rand.NewPCG(13, 17))
		var all []council
		for i := range 300 {
			c := randomCouncil(rng, i)
			all = append(all, c)
			f.put(t, c)
		}
		for _, filter := range []string{
			`sector = SECTOR_RETAIL`,
			`municipalities:"1480"`,
			`sector = SECTOR_VEHICLE_INDUSTRY AND municipalities:"1384"`,
			`municipalities:"1480" AND municipalities:"1440"`,
			`display_name = "Ål"`,
			`sector = SECTOR_RETAIL AND display_name = "fordon"`,
			`sector = SECTOR_RETAIL OR municipalities:"1482"`,
			`NOT sector = SECTOR_HOSPITALITY`,
			`sector != SECTOR_RETAIL`,
			`municipalities:"9999"`,
		} {
			parsed, err := listing.ParseFilter(filter, decls)
			if err != nil {
				t.Fatal(err)
			}
			for _, orderBy := range []string{"create_time", "display_name desc"} {
				order, desc, _ := strings.Cut(orderBy, " ")
				var want []string
				for _, c := range reference(all, order, desc == "desc") {
					if listing.Match(parsed, c, values) {
						want = append(want, c.GetName())
					}
				}
				got := f.walk(t, listing.Request{Method: "List", Filter: filter, OrderBy: orderBy, PageSize: 10})
				if !slices.Equal(got, want) {
					t.Fatalf("filter %q order %q:\n got %v\nwant %v", filter, orderBy, got, want)
				}
			}
		}
	})
}

func TestTotalSize(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		f := newFixture(t, rdb)
		rng := rand.New(rand.NewPCG(1, 1))
		retail := 0
		for i := range 40 {
			c := randomCouncil(rng, i)
			if c.GetSector() == commonv1.Sector_SECTOR_RETAIL {
				retail++
			}
			f.put(t, c)
		}
		for _, c := range []struct {
			filter string
			total  int64
			exact  bool
		}{
			{"", 40, true},
			{"sector = SECTOR_RETAIL", int64(retail), true},
			{`display_name = "a"`, 40, false}, // an upper bound
		} {
			p, err := f.l.List(context.Background(), listing.Request{Method: "List", Filter: c.filter, PageSize: 5})
			if err != nil {
				t.Fatal(err)
			}
			if p.Total != c.total || p.Exact != c.exact {
				t.Errorf("%q: total %d exact %v, want %d %v", c.filter, p.Total, p.Exact, c.total, c.exact)
			}
			// The response's total_size: only an exact count is given.
			if want := map[bool]int32{true: int32(c.total), false: 0}[c.exact]; p.TotalSize() != want {
				t.Errorf("%q: total_size %d, want %d", c.filter, p.TotalSize(), want)
			}
		}
	})
}

// A page costs a bounded number of round trips, whatever the size of the
// collection: the index sizes, one range, one load (and a second range and
// load only when a filter is checked on candidates).
func TestPageRoundTripsAreBounded(t *testing.T) {
	f := newFixture(t, testkit.Redis(t))
	rng := rand.New(rand.NewPCG(2, 3))
	for i := range 500 {
		f.put(t, randomCouncil(rng, i))
	}
	for _, c := range []struct {
		filter string
		max    int64
	}{
		{"", 3},
		{"sector = SECTOR_RETAIL", 3},
		{`sector = SECTOR_RETAIL AND municipalities:"1480"`, 3 + 2*10},
	} {
		req := listing.Request{Method: "List", Filter: c.filter, PageSize: 20}
		for page := 0; page < 5; page++ {
			before := f.trips.Load()
			p, err := f.l.List(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if n := f.trips.Load() - before; n > c.max {
				t.Fatalf("%q page %d: %d round trips, want at most %d", c.filter, page, n, c.max)
			}
			if p.Next == "" {
				break
			}
			req.PageToken = p.Next
		}
	}
}

// A page stops before it would pass MaxPageBytes; every item is still
// returned once, over more pages.
func TestPagesStayWithinTheByteBudget(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		f := newFixture(t, rdb)
		f.l.MaxPageBytes = 10_000
		var all []string
		for i := range 30 {
			c := &councilsv1.SectorCouncil{Name: fmt.Sprintf("councils/big%02d", i), DisplayName: strings.Repeat("x", 190),
				MemberOrganisations: slices.Repeat([]string{strings.Repeat("m", 190)}, 10), CreateTime: timestamppb.Now()}
			f.put(t, c)
			all = append(all, c.GetName())
		}
		req := listing.Request{Method: "List", PageSize: 1000}
		var got []string
		pages := 0
		for {
			p, err := f.l.List(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			size := 0
			for _, c := range p.Items {
				size += proto.Size(c)
				got = append(got, c.GetName())
			}
			if size > 10_000 {
				t.Fatalf("page of %d bytes", size)
			}
			if p.Next == "" {
				break
			}
			req.PageToken = p.Next
		}
		if pages < 3 || !slices.Equal(got, all) {
			t.Fatalf("%d pages, items %v", pages, got)
		}
	})
}

func TestListRejectsBadRequests(t *testing.T) {
	f := newFixture(t, testkit.Embedded(t))
	ctx := context.Background()
	for _, c := range []struct {
		req   listing.Request
		field string
	}{
		{listing.Request{Method: "List", OrderBy: "color"}, "order_by"},
		{listing.Request{Method: "List", OrderBy: "sector, create_time"}, "order_by"},
		{listing.Request{Method: "List", Filter: "sector ="}, "filter"},
		{listing.Request{Method: "List", PageToken: "garbage"}, "page_token"},
	} {
		_, err := f.l.List(ctx, c.req)
		testkit.WantBadRequest(t, err, c.field)
	}
	// A token is bound to its filter and order.
	for i := range 3 {
		f.put(t, randomCouncil(rand.New(rand.NewPCG(uint64(i), 1)), i))
	}
	p, err := f.l.List(ctx, listing.Request{Method: "List", PageSize: 1})
	if err != nil || p.Next == "" {
		t.Fatal(p, err)
	}
	_, err = f.l.List(ctx, listing.Request{Method: "List", PageSize: 1, PageToken: p.Next, OrderBy: "sector"})
	testkit.WantBadRequest(t, err, "page_token")
}

// Within reads a range of the order's sort key (a time range over a time
// order) in both directions.
func TestWithinBoundsTheSortKey(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		f := newFixture(t, rdb)
		rng := rand.New(rand.NewPCG(5, 8))
		var all []council
		for i := range 60 {
			c := randomCouncil(rng, i)
			all = append(all, c)
			f.put(t, c)
		}
		lo, hi := baseTime.Add(time.Hour), baseTime.Add(4*time.Hour)
		b := &listing.Bounds{Lo: listing.GoTimeKey(lo), Hi: listing.GoTimeKey(hi)}
		for _, orderBy := range []string{"create_time", "create_time desc"} {
			var want []string
			for _, c := range reference(all, "create_time", strings.HasSuffix(orderBy, "desc")) {
				if ct := c.GetCreateTime().AsTime(); !ct.Before(lo) && ct.Before(hi) {
					want = append(want, c.GetName())
				}
			}
			got := f.walk(t, listing.Request{Method: "List", OrderBy: orderBy, PageSize: 4, Within: b})
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Fatalf("%s within [%v, %v):\n got %v\nwant %v", orderBy, lo, hi, got, want)
			}
		}
		// Open-ended on either side.
		got := f.walk(t, listing.Request{Method: "List", PageSize: 50, Within: &listing.Bounds{Lo: listing.GoTimeKey(baseTime.Add(5 * time.Hour))}})
		for _, n := range got {
			for _, c := range all {
				if c.GetName() == n && c.GetCreateTime().AsTime().Before(baseTime.Add(5*time.Hour)) {
					t.Fatalf("%s is before the lower bound", n)
				}
			}
		}
	})
}

var randomCouncilForFuzz = randomCouncil(rand.New(rand.NewPCG(9, 9)), 0)
