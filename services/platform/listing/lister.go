package listing

import (
	"context"
	"encoding/base64"
	"math"
	"slices"
	"strings"

	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"go.einride.tech/aip/filtering"
)

// Defaults of Lister.
const (
	// DefaultScanFactor × the page size bounds the candidates one call
	// reads for a filter the indexes do not answer.
	DefaultScanFactor = 10
	// DefaultMaxPageBytes keeps a page below gRPC's default 4 MiB message
	// limit with room for the envelope (and the gateway's JSON, which the
	// gateway's own limit covers).
	DefaultMaxPageBytes = 3 << 20
)

// Lister serves one collection's List RPC from its Index: each page is a
// range read from one sorted set after the page token's cursor, then one
// pipelined read of just those resources. A page costs the same at 10 and
// at 100 000 resources.
//
// Filters: equality terms ANDed at the top of the filter on Index.Fields
// (`state = STATE_APPROVED AND municipalities:"1480"`), and the request's
// parent, choose the sorted set to read: the smallest of theirs. Whatever
// else the filter says is checked on the candidates read, in index order,
// at most ScanFactor × page size per call; when that bound is reached the
// page holds the matches found so far (possibly none) and a next page token
// (AIP-158), so a caller pages on until the token is empty.
type Lister[R any] struct {
	Index *Index[R]
	Store *store.Store
	// Keyspace is the service's (the index keys are in it).
	Keyspace store.Keyspace
	Tokens   *Tokens
	// Decls declares the fields the filter may use (ParseFilter).
	Decls *filtering.Declarations
	// Values gives a row's values of a filter field (Match).
	Values Values[R]
	// DefaultOrder is the order_by of a request without one.
	DefaultOrder string
	// Load reads the rows of resource names, in order, skipping names that
	// no longer exist. It should take a bounded number of round trips (one
	// pipelined read, say), whatever len(names).
	Load func(ctx context.Context, names []string) ([]R, error)
	// Size is a row's size in the response, for MaxPageBytes.
	Size func(R) int
	// ScanFactor and MaxPageBytes: zero means the defaults above.
	ScanFactor   int
	MaxPageBytes int
}

// Request is a List call.
type Request struct {
	// Method and Parent bind page tokens to the call they belong to.
	Method, Parent  string
	Filter, OrderBy string
	PageSize        int32
	PageToken       string
	// Where are equality constraints the request makes besides its filter,
	// on Index.Fields: {"parent": "councils/fordon"}. Empty values are
	// ignored.
	Where map[string]string
	// Within limits the rows to those whose sort key for the order lies in
	// [Lo, Hi) (either may be empty for no bound): a time range over a
	// time order, read as a range of the index. The keys must have a fixed
	// width (TimeKey does). Method or Parent should carry the bounds, so a
	// page token is bound to them.
	Within *Bounds
}

// Bounds are sort keys bounding a list: from Lo (inclusive) to Hi
// (exclusive).
type Bounds struct{ Lo, Hi string }

// Page is one page of rows.
type Page[R any] struct {
	Items []R
	// Next is the next page token; empty on the last page.
	Next string
	// Total is how many rows match: exact (Exact) without a filter or with
	// one indexed equality, otherwise an upper bound (the size of the
	// narrowest index the request uses).
	Total int64
	Exact bool
}

// TotalSize is the page's total_size: Total when it is exact, otherwise 0
// (unset). AIP-158 lets a List leave it out; an upper bound would read as a
// count (100 000 "results" for a filter that matches three).
func (p Page[R]) TotalSize() int32 {
	if !p.Exact {
		return 0
	}
	return int32(min(p.Total, math.MaxInt32))
}

type term struct{ field, value string }

var errBadToken = apierr.Field("page_token", "is not a page token of this list request (altered, or made for another parent, filter or order)")

// List serves req.
func (l *Lister[R]) List(ctx context.Context, req Request) (Page[R], error) {
	filter, err := ParseFilter(req.Filter, l.Decls)
	if err != nil {
		return Page[R]{}, err
	}
	order, desc, err := l.order(req.OrderBy)
	if err != nil {
		return Page[R]{}, err
	}
	orderStr := order
	if desc {
		orderStr += " desc"
	}
	scope := Scope(req.Method, req.Parent, req.Filter, orderStr)
	cursor, err := l.Tokens.Decode(req.PageToken, scope)
	if err != nil {
		return Page[R]{}, err
	}
	// The cursor is the last member returned, base64 because a descending
	// set's members are not UTF-8.
	after := ""
	if len(cursor) == 1 {
		b, err := base64.RawURLEncoding.DecodeString(cursor[0])
		if err != nil {
			return Page[R]{}, errBadToken
		}
		after = string(b)
	} else if len(cursor) != 0 {
		return Page[R]{}, errBadToken
	}

	var terms []term
	for f, v := range req.Where {
		if v != "" {
			terms = append(terms, term{f, v})
		}
	}
	slices.SortFunc(terms, func(a, b term) int { return strings.Compare(a.field, b.field) })
	filterTerms, onlyTerms := filter.Terms()
	for _, t := range filterTerms {
		if _, ok := l.Index.Fields[t[0]]; ok {
			terms = append(terms, term{t[0], t[1]})
		} else {
			onlyTerms = false
		}
	}

	// The sorted set to read: the whole collection, or the smallest of the
	// indexed terms' sets.
	keys := []string{l.Index.Key(l.Keyspace, order, desc, "", "")}
	if len(terms) > 0 {
		keys = keys[:0]
		for _, t := range terms {
			keys = append(keys, l.Index.Key(l.Keyspace, order, desc, t.field, t.value))
		}
	}
	cards, err := l.Store.Cards(ctx, keys...)
	if err != nil {
		return Page[R]{}, err
	}
	drive := 0
	for i, c := range cards {
		if c < cards[drive] {
			drive = i
		}
	}
	page := Page[R]{Total: cards[drive], Exact: onlyTerms && len(terms) <= 1 && req.Within == nil}
	start, stop := "-", "+"
	if b := req.Within; b != nil {
		// Ascending sets hold the key itself; descending ones the inverted
		// key followed by 0xff and the separator (member).
		switch {
		case !desc && b.Lo != "":
			start = "[" + b.Lo
		case desc && b.Hi != "":
			start = "(" + invert(b.Hi) + "\x02"
		}
		switch {
		case !desc && b.Hi != "":
			stop = "(" + b.Hi
		case desc && b.Lo != "":
			stop = "(" + invert(b.Lo) + "\x02"
		}
	}
	// Everything but the driving set's own term is checked on candidates.
	residual := len(terms) > 1 || !onlyTerms

	size := PageSize(req.PageSize)
	scanFactor, maxBytes := l.ScanFactor, l.MaxPageBytes
	if scanFactor <= 0 {
		scanFactor = DefaultScanFactor
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxPageBytes
	}
	budget := size // without a residual check every candidate matches
	if residual {
		budget = size * scanFactor
	}
	bytes, scanned := 0, 0
	last := after // the member of the last row returned or passed over
	more := true  // whether the set may hold members after last
	for len(page.Items) < size && scanned < budget && more {
		want := size - len(page.Items)
		if residual {
			want = min(max(want, 50), budget-scanned)
		}
		// One more than wanted tells whether anything follows, so the last
		// page carries no token to an empty one.
		from := start
		if last != "" {
			from = "(" + last
		}
		members, err := l.Store.RangeLex(ctx, keys[drive], from, stop, want+1)
		if err != nil {
			return Page[R]{}, err
		}
		if more = len(members) > want; more {
			members = members[:want]
		}
		if len(members) == 0 {
			break
		}
		names := make([]string, len(members))
		for i, m := range members {
			names[i] = MemberName(m)
		}
		rows, err := l.Load(ctx, names)
		if err != nil {
			return Page[R]{}, err
		}
		byName := make(map[string]R, len(rows))
		for _, r := range rows {
			byName[l.Index.Name(r)] = r
		}
		stop := false
		for i, m := range members {
			// A name gone between the range read and the load was deleted.
			if r, ok := byName[names[i]]; ok && (!residual || l.matches(filter, terms, r)) {
				n := l.Size(r)
				if len(page.Items) > 0 && bytes+n > maxBytes {
					more, stop = true, true // the next page starts with this row
					break
				}
				bytes += n
				page.Items = append(page.Items, r)
			}
			scanned++
			last = m
			if len(page.Items) == size {
				more = more || i < len(members)-1
				stop = true
				break
			}
		}
		if stop {
			break
		}
	}
	if more {
		page.Next = l.Tokens.Encode(scope, []string{base64.RawURLEncoding.EncodeToString([]byte(last))})
	}
	return page, nil
}

// matches checks what the driving set does not guarantee: the other
// indexed terms and the whole filter.
func (l *Lister[R]) matches(f Filter, terms []term, r R) bool {
	for _, t := range terms {
		if !slices.Contains(l.Index.Fields[t.field](r), t.value) {
			return false
		}
	}
	return Match(f, r, l.Values)
}

// order parses order_by: one of the index's orders, optionally " desc".
// Ties are broken by resource name; desc reverses the whole order.
func (l *Lister[R]) order(orderBy string) (field string, desc bool, err error) {
	allowed := make([]string, 0, len(l.Index.Orders))
	for o := range l.Index.Orders {
		allowed = append(allowed, o)
	}
	slices.Sort(allowed)
	o, err := ParseOrder(orderBy, l.DefaultOrder, allowed...)
	if err != nil {
		return "", false, err
	}
	if len(o.Fields) != 1 {
		return "", false, apierr.Field("order_by", "order by one field (one of %s), optionally followed by \" desc\"; ties are ordered by name", strings.Join(allowed, ", "))
	}
	return o.Fields[0].Path, o.Fields[0].Desc, nil
}
