package listing_test

import (
	"encoding/base64"
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
