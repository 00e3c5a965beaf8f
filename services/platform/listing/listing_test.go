package listing_test

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"go.einride.tech/aip/ordering"
)

func TestPageSize(t *testing.T) {
	for _, c := range []struct {
		requested int32
		want      int
	}{
		{0, listing.DefaultPageSize},
		{-3, listing.DefaultPageSize},
		{1, 1},
		{37, 37},
		{1000, 1000},
		{1001, listing.MaxPageSize},
		{1 << 30, listing.MaxPageSize},
	} {
		if got := listing.PageSize(c.requested); got != c.want {
			t.Errorf("PageSize(%d) = %d, want %d", c.requested, got, c.want)
		}
	}
	if listing.DefaultPageSize != 50 || listing.MaxPageSize != 1000 {
		t.Errorf("page sizes are %d/%d; the API documents 50/1000", listing.DefaultPageSize, listing.MaxPageSize)
	}
}

// --- page tokens ---

var scope = listing.Scope("ListNeeds", "councils/-", `state = STATE_APPROVED`, "priority desc,create_time")

func TestTokenRoundTrip(t *testing.T) {
	tokens := listing.NewTokens("secret")
	cursor := []string{"0003", "20260101", "councils/a/needs/b"}
	token := tokens.Encode(scope, cursor)
	got, err := tokens.Decode(token, scope)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, cursor) {
		t.Fatalf("cursor %q came back as %q", cursor, got)
	}
	// Another instance with the same key (another replica) accepts it too.
	if _, err := listing.NewTokens("secret").Decode(token, scope); err != nil {
		t.Fatalf("a replica with the same key: %v", err)
	}
}

func TestEmptyTokenIsFirstPage(t *testing.T) {
	got, err := listing.NewTokens("secret").Decode("", scope)
	if err != nil || got != nil {
		t.Fatalf("empty token: cursor %q, error %v; want nil, nil", got, err)
	}
}

// base64url's alphabet, plus characters a client could mangle a token into.
const tokenChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ %"

func TestTamperedTokenIsRejected(t *testing.T) {
	tokens := listing.NewTokens("secret")
	token := tokens.Encode(scope, []string{"0003", "councils/a/needs/b"})
	if !strings.Contains(token, ".") {
		t.Fatalf("token %q has no signature part", token)
	}
	tried := 0
	for i := range len(token) {
		for _, c := range []byte(tokenChars) {
			if token[i] == c {
				continue
			}
			bad := token[:i] + string(c) + token[i+1:]
			tried++
			if cur, err := tokens.Decode(bad, scope); err == nil {
				t.Fatalf("token changed at byte %d (%q→%q) was accepted, cursor %q", i, token[i], c, cur)
			} else {
				testkit.WantBadRequest(t, err, "page_token")
			}
		}
	}
	// Cutting or extending it is tampering too.
	for _, bad := range []string{token[:len(token)-1], token + "A", token[1:], "A" + token} {
		_, err := tokens.Decode(bad, scope)
		testkit.WantBadRequest(t, err, "page_token")
	}
	t.Logf("%d altered tokens rejected", tried)
}

func TestTokenOfAnotherRequestIsRejected(t *testing.T) {
	tokens := listing.NewTokens("secret")
	token := tokens.Encode(scope, []string{"x"})
	for name, other := range map[string]string{
		"filter":   listing.Scope("ListNeeds", "councils/-", `state = STATE_DRAFT`, "priority desc,create_time"),
		"order":    listing.Scope("ListNeeds", "councils/-", `state = STATE_APPROVED`, "create_time"),
		"parent":   listing.Scope("ListNeeds", "councils/a", `state = STATE_APPROVED`, "priority desc,create_time"),
		"method":   listing.Scope("ListCouncils", "councils/-", `state = STATE_APPROVED`, "priority desc,create_time"),
		"boundary": listing.Scope("ListNeeds", "councils/-state = STATE_APPROVED", "", "priority desc,create_time"),
	} {
		if other == scope {
			t.Fatalf("%s: Scope does not tell the requests apart", name)
		}
		_, err := tokens.Decode(token, other)
		testkit.WantBadRequest(t, err, "page_token")
	}
}

func TestTokenSignedWithAnotherKeyIsRejected(t *testing.T) {
	token := listing.NewTokens("key-one").Encode(scope, []string{"x"})
	_, err := listing.NewTokens("key-two").Decode(token, scope)
	testkit.WantBadRequest(t, err, "page_token")

	// Without a configured key each instance draws its own.
	token = listing.NewTokens("").Encode(scope, []string{"x"})
	_, err = listing.NewTokens("").Decode(token, scope)
	testkit.WantBadRequest(t, err, "page_token")
}

func TestGarbageTokenIsRejected(t *testing.T) {
	tokens := listing.NewTokens("secret")
	b64 := base64.RawURLEncoding.EncodeToString
	body := b64([]byte(`{"s":"` + scope + `","c":["x"]}`))
	for _, bad := range []string{
		"x", ".", "..", "garbage", "a.b", "!!!.!!!",
		body,       // no signature
		body + ".", // empty signature
		body + "." + b64(make([]byte, 32)),
		b64([]byte("not json")) + "." + b64([]byte("sig")),
		strings.Repeat("A", 10_000),
	} {
		_, err := tokens.Decode(bad, scope)
		testkit.WantBadRequest(t, err, "page_token")
	}
}

// --- order_by ---

func TestParseOrder(t *testing.T) {
	allowed := []string{"create_time", "priority", "needed_by"}
	for _, c := range []struct {
		orderBy string
		want    []ordering.Field
	}{
		{"", []ordering.Field{{Path: "create_time"}}},
		{"   ", []ordering.Field{{Path: "create_time"}}},
		{"priority", []ordering.Field{{Path: "priority"}}},
		{"priority desc", []ordering.Field{{Path: "priority", Desc: true}}},
		{"priority asc", []ordering.Field{{Path: "priority"}}},
		{"neededBy desc", []ordering.Field{{Path: "needed_by", Desc: true}}},
		{"createTime", []ordering.Field{{Path: "create_time"}}},
		{"priority desc, needed_by,create_time desc", []ordering.Field{
			{Path: "priority", Desc: true}, {Path: "needed_by"}, {Path: "create_time", Desc: true}}},
	} {
		o, err := listing.ParseOrder(c.orderBy, "create_time", allowed...)
		if err != nil {
			t.Errorf("%q: %v", c.orderBy, err)
			continue
		}
		if !slices.Equal(o.Fields, c.want) {
			t.Errorf("%q parsed as %v, want %v", c.orderBy, o.Fields, c.want)
		}
	}
}

func TestOrderStringTellsOrdersApart(t *testing.T) {
	a, _ := listing.ParseOrder("priority desc, create_time", "", "priority", "create_time")
	b, _ := listing.ParseOrder("priority, create_time", "", "priority", "create_time")
	c, _ := listing.ParseOrder("priority desc,create_time", "", "priority", "create_time")
	if a.String() == b.String() {
		t.Errorf("%q and %q have the same canonical form %q", "priority desc, create_time", "priority, create_time", a)
	}
	if a.String() != c.String() {
		t.Errorf("spacing changed the canonical form: %q vs %q", a, c)
	}
}

func TestParseOrderRejects(t *testing.T) {
	allowed := []string{"create_time", "priority", "needed_by"}
	for _, orderBy := range []string{"color", "priority, color desc", "etag"} {
		_, err := listing.ParseOrder(orderBy, "create_time", allowed...)
		msg := testkit.WantBadRequest(t, err, "order_by")
		if !strings.Contains(msg, "needed_by") {
			t.Errorf("%q: message %q does not list the fields one can order by", orderBy, msg)
		}
	}
	for _, orderBy := range []string{
		"priority sideways", "priority desc desc", "priority,,create_time", ",", "priority;create_time",
		"neededBy DESC", "priority -",
	} {
		_, err := listing.ParseOrder(orderBy, "create_time", allowed...)
		msg := testkit.WantBadRequest(t, err, "order_by")
		if !strings.Contains(msg, orderBy) {
			t.Errorf("%q: message %q does not quote what the caller wrote", orderBy, msg)
		}
	}
}

// --- Paginate ---

type item struct{ name, prio, day string }

func itemKey(it item, field string) string {
	switch field {
	case "prio":
		return it.prio
	case "day":
		return it.day
	}
	panic("no sort key for " + field)
}

func itemName(it item) string { return it.name }

// newItems makes n items with few distinct sort values, so most sort keys
// tie and the name must break the ties, handed over in shuffled order.
func newItems(rng *rand.Rand, n int) []item {
	items := make([]item, n)
	for i := range items {
		items[i] = item{
			name: fmt.Sprintf("items/%04d", i),
			prio: fmt.Sprintf("%02d", rng.IntN(3)),
			day:  fmt.Sprintf("2026-01-%02d", 1+rng.IntN(5)),
		}
	}
	rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	return items
}

// reference is what a page walk must return: items sorted by order, ties
// by name, using the standard library's stable sort as a second opinion.
func reference(items []item, order listing.Order) []item {
	out := slices.Clone(items)
	slices.SortStableFunc(out, func(a, b item) int { return cmp.Compare(a.name, b.name) })
	for i := len(order.Fields) - 1; i >= 0; i-- {
		f := order.Fields[i]
		slices.SortStableFunc(out, func(a, b item) int {
			c := cmp.Compare(itemKey(a, f.Path), itemKey(b, f.Path))
			if f.Desc {
				c = -c
			}
			return c
		})
	}
	return out
}

var orders = []string{"", "prio", "prio desc", "day desc, prio", "prio desc, day", "day, prio desc"}

func mustOrder(t testing.TB, orderBy string) listing.Order {
	t.Helper()
	o, err := listing.ParseOrder(orderBy, "", "prio", "day")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestPaginateWalksEveryItemOnceInOrder(t *testing.T) {
	items := newItems(rand.New(rand.NewPCG(1, 2)), 250)
	tokens := listing.NewTokens("secret")
	for _, orderBy := range orders {
		order := mustOrder(t, orderBy)
		want := reference(items, order)
		for _, size := range []int{1, 7, 50, 1000} {
			t.Run(fmt.Sprintf("%q/%d", orderBy, size), func(t *testing.T) {
				sc := listing.Scope("items", order.String())
				var got []item
				token := ""
				for calls := 0; ; calls++ {
					if calls > len(items)+1 {
						t.Fatalf("no last page after %d calls", calls)
					}
					cursor, err := tokens.Decode(token, sc)
					if err != nil {
						t.Fatal(err)
					}
					page, next := listing.Paginate(items, order, itemKey, itemName, size, cursor)
					if len(page) > size {
						t.Fatalf("page of %d items, size %d", len(page), size)
					}
					got = append(got, page...)
					if next == nil {
						break
					}
					if len(page) != size {
						t.Fatalf("short page (%d of %d) before the last", len(page), size)
					}
					token = tokens.Encode(sc, next)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("walk returned %d items, want %d in reference order;\n got %v\nwant %v", len(got), len(want), names(got), names(want))
				}
			})
		}
	}
}

func names(items []item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.name + "/" + it.prio + "/" + it.day
	}
	return out
}

func TestPaginateIsStableUnderInsertsAndDeletes(t *testing.T) {
	for _, orderBy := range orders {
		for _, size := range []int{1, 7, 50} {
			t.Run(fmt.Sprintf("%q/%d", orderBy, size), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(size), uint64(len(orderBy))))
				order := mustOrder(t, orderBy)
				items := newItems(rng, 250)
				// Even-numbered items stay throughout; the others may be
				// deleted, and new ones arrive anywhere in the order.
				stays := map[string]bool{}
				for _, it := range items {
					var n int
					fmt.Sscanf(it.name, "items/%d", &n)
					stays[it.name] = n%2 == 0
				}
				fresh := 10_000
				seen := map[string]bool{}
				var got []item
				var cursor []string
				for calls := 0; ; calls++ {
					if calls > 2000 {
						t.Fatal("walk does not end")
					}
					page, next := listing.Paginate(items, order, itemKey, itemName, size, cursor)
					for _, it := range page {
						if seen[it.name] {
							t.Fatalf("%s returned twice", it.name)
						}
						seen[it.name] = true
					}
					got = append(got, page...)
					if next == nil {
						break
					}
					cursor = next
					if calls >= 100 {
						continue // let the walk finish
					}
					// Between calls: delete up to 3 deletable items, add 3 new ones.
					for range 3 {
						i := rng.IntN(len(items))
						if !stays[items[i].name] {
							items = slices.Delete(items, i, i+1)
						}
					}
					for range 3 {
						fresh++
						items = append(items, item{
							name: fmt.Sprintf("items/%04d", fresh),
							prio: fmt.Sprintf("%02d", rng.IntN(3)),
							day:  fmt.Sprintf("2026-01-%02d", 1+rng.IntN(5)),
						})
					}
				}
				for name, stay := range stays {
					if stay && !seen[name] {
						t.Errorf("%s existed throughout but was skipped", name)
					}
				}
				// What was returned is in order: each page continues after the last.
				if want := reference(got, order); !slices.Equal(got, want) {
					t.Errorf("items returned out of order:\n got %v\nwant %v", names(got), names(want))
				}
			})
		}
	}
}

func TestPaginateEdgeCases(t *testing.T) {
	order := mustOrder(t, "prio")
	items := newItems(rand.New(rand.NewPCG(3, 4)), 60)

	page, next := listing.Paginate[item](nil, order, itemKey, itemName, 10, nil)
	if len(page) != 0 || next != nil {
		t.Errorf("no items: page %v, next %q", page, next)
	}

	// A size below 1 is the default size, not a panic or an empty page.
	page, next = listing.Paginate(items, order, itemKey, itemName, 0, nil)
	if len(page) != listing.DefaultPageSize || next == nil {
		t.Errorf("size 0: %d items, next %q; want %d and a next page", len(page), next, listing.DefaultPageSize)
	}

	// Exactly one full page: no next page.
	page, next = listing.Paginate(items, order, itemKey, itemName, len(items), nil)
	if len(page) != len(items) || next != nil {
		t.Errorf("exact fit: %d items, next %q", len(page), next)
	}

	// A cursor after the last item (everything after it was deleted) is an
	// empty last page.
	last := reference(items, order)[len(items)-1]
	page, next = listing.Paginate(items, order, itemKey, itemName, 10, []string{last.prio, last.name})
	if len(page) != 0 || next != nil {
		t.Errorf("cursor at the end: %d items, next %q", len(page), next)
	}
}

func BenchmarkPaginate(b *testing.B) {
	items := newItems(rand.New(rand.NewPCG(5, 6)), 10_000)
	order := mustOrder(b, "prio desc, day")
	_, cursor := listing.Paginate(items, order, itemKey, itemName, 5_000, nil)
	if cursor == nil {
		b.Fatal("no cursor to start from")
	}
	b.ReportAllocs()
	for b.Loop() {
		page, _ := listing.Paginate(items, order, itemKey, itemName, listing.DefaultPageSize, cursor)
		if len(page) != listing.DefaultPageSize {
			b.Fatalf("page of %d", len(page))
		}
	}
}
