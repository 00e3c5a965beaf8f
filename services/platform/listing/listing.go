// Package listing implements AIP-132/158/160 list requests once for every
// service: page sizes, tamper-evident page tokens bound to the request,
// order_by and an AIP-160 filter subset, over resources already in memory.
//
// Lists are evaluated over a service's index in Go: that is the right trade
// at the hub's volume (thousands of needs, not millions), keeps one
// evaluator for every field, and the keyset cursor makes pages stable while
// resources are added or removed between calls.
package listing

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"slices"
	"strings"
	"unicode"

	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"go.einride.tech/aip/ordering"
)

// Page sizes (AIP-158).
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// PageSize applies the default to 0 and coerces sizes above the maximum.
func PageSize(requested int32) int {
	switch {
	case requested <= 0:
		return DefaultPageSize
	case requested > MaxPageSize:
		return MaxPageSize
	}
	return int(requested)
}

// Tokens signs and checks page tokens. A token carries the position after
// the last item returned and a digest of the request it belongs to, sealed
// with HMAC-SHA256, so a token that was altered, or replayed against another
// filter or order, is INVALID_ARGUMENT instead of a silently wrong page.
type Tokens struct{ key []byte }

// TokenKeyFlag defines -page-token-key (KN_PAGE_TOKEN_KEY) on fs, for
// binaries that serve lists.
func TokenKeyFlag(fs *flag.FlagSet) *string {
	return config.String(fs, "page-token-key", "",
		"secret that signs page tokens; set the same value on every replica (random per process if empty)")
}

// NewTokens uses key to sign tokens. An empty key takes a random one: tokens
// then stop working across restarts and between replicas, so deployments
// with more than one replica set KN_PAGE_TOKEN_KEY.
func NewTokens(key string) *Tokens {
	if key == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return &Tokens{key: b}
	}
	return &Tokens{key: []byte(key)}
}

type tokenBody struct {
	Scope  string   `json:"s"`
	Cursor []string `json:"c"`
}

// Scope is the part of a request a token is bound to.
func Scope(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

func (t *Tokens) sign(b []byte) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write(b)
	return m.Sum(nil)
}

// Encode makes the token for the page after cursor.
func (t *Tokens) Encode(scope string, cursor []string) string {
	b, _ := json.Marshal(tokenBody{Scope: scope, Cursor: cursor})
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(t.sign(b))
}

// Decode returns the cursor of a token made by Encode for the same scope;
// nil for an empty token.
func (t *Tokens) Decode(token, scope string) ([]string, error) {
	if token == "" {
		return nil, nil
	}
	bad := apierr.Field("page_token", "is not a page token of this list request (altered, or made for another parent, filter or order)")
	body, sig, ok := strings.Cut(token, ".")
	if !ok {
		return nil, bad
	}
	// Strict: the lenient decoder ignores the unused low bits of the last
	// character, so several spellings of one token would all be accepted.
	b, err1 := base64.RawURLEncoding.Strict().DecodeString(body)
	s, err2 := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(s, t.sign(b)) {
		return nil, bad
	}
	var tb tokenBody
	if err := json.Unmarshal(b, &tb); err != nil || tb.Scope != scope {
		return nil, bad
	}
	return tb.Cursor, nil
}

// Order is a parsed order_by.
type Order struct{ Fields []ordering.Field }

type orderReq string

func (o orderReq) GetOrderBy() string { return string(o) }

// ParseOrder parses order_by ("priority desc, create_time"), accepting the
// JSON (lowerCamel) spelling of field names too, and checks each field is
// one of allowed. An empty order_by means def.
func ParseOrder(orderBy string, def string, allowed ...string) (Order, error) {
	if strings.TrimSpace(orderBy) == "" {
		orderBy = def
	}
	ob, err := ordering.ParseOrderBy(orderReq(snakeCaseFields(orderBy)))
	if err != nil {
		return Order{}, apierr.Field("order_by", "%q is not a valid order: list fields separated by commas, each optionally followed by \" desc\" (fields: %s)", orderBy, strings.Join(allowed, ", "))
	}
	for _, f := range ob.Fields {
		if !slices.Contains(allowed, f.Path) {
			return Order{}, apierr.Field("order_by", "cannot order by %q; use one of %s", f.Path, strings.Join(allowed, ", "))
		}
	}
	return Order{Fields: ob.Fields}, nil
}

// String is the canonical form, for Scope.
func (o Order) String() string {
	parts := make([]string, len(o.Fields))
	for i, f := range o.Fields {
		parts[i] = f.Path
		if f.Desc {
			parts[i] += " desc"
		}
	}
	return strings.Join(parts, ",")
}

// snakeCaseFields rewrites the field names of an order_by to snake_case,
// leaving the rest (" desc", separators, mistakes) as the caller wrote it.
func snakeCaseFields(orderBy string) string {
	parts := strings.Split(orderBy, ",")
	for i, p := range parts {
		words := strings.Fields(p)
		if len(words) > 0 {
			words[0] = snakeCase(words[0])
		}
		parts[i] = strings.Join(words, " ")
	}
	return strings.Join(parts, ",")
}

func snakeCase(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsUpper(r) {
			b.WriteByte('_')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// SortKey gives an item's value of an order field as a string that sorts
// like the value (zero-padded numbers, RFC 3339 UTC times, …).
type SortKey[T any] func(item T, field string) string

// Paginate sorts items by order (ties broken by name), skips those up to and
// including cursor, and returns one page of at most size items (a size
// below 1 means DefaultPageSize) and the cursor after it (nil when nothing
// follows).
func Paginate[T any](items []T, order Order, key SortKey[T], name func(T) string, size int, cursor []string) ([]T, []string) {
	if size < 1 {
		size = DefaultPageSize
	}
	keyOf := func(it T) []string {
		k := make([]string, 0, len(order.Fields)+1)
		for _, f := range order.Fields {
			k = append(k, key(it, f.Path))
		}
		return append(k, name(it))
	}
	compare := func(a, b []string) int {
		for i, f := range order.Fields {
			if c := cmp.Compare(a[i], b[i]); c != 0 {
				if f.Desc {
					return -c
				}
				return c
			}
		}
		return cmp.Compare(a[len(a)-1], b[len(b)-1])
	}
	keys := make([][]string, len(items))
	idx := make([]int, len(items))
	for i, it := range items {
		idx[i] = i
		keys[i] = keyOf(it)
	}
	slices.SortFunc(idx, func(a, b int) int { return compare(keys[a], keys[b]) })
	start := 0
	if len(cursor) == len(order.Fields)+1 {
		start, _ = slices.BinarySearchFunc(idx, cursor, func(i int, c []string) int { return compare(keys[i], c) })
		if start < len(idx) && compare(keys[idx[start]], cursor) == 0 {
			start++
		}
	}
	end := min(start+size, len(idx))
	page := make([]T, 0, end-start)
	for _, i := range idx[start:end] {
		page = append(page, items[i])
	}
	if end == len(idx) {
		return page, nil
	}
	return page, keys[idx[end-1]]
}
