package listing

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Index declares, once per resource type, how its lists are served from
// Redis: the orderings a List may ask for and the fields whose equality
// filters are answered from index sets.
//
// For every ordering and direction there is one sorted set of all the
// collection's resources, and one per value of every indexed field (so
// `state = STATE_APPROVED` reads its page straight from the set of approved
// ones, in the requested order). Every member scores 0 and is
// "<sort key>\x01<tiebreak>\x01<name>", so a set sorts by sort key, then
// tiebreak, then resource name: a total order, read page by page with
// ZRANGE … BYLEX after the last member returned. The descending set holds
// the sort key inverted, so "priority desc" lists the highest priority
// first and, within one priority, still the oldest first.
//
// R is what the key functions see: the resource, or the resource with what
// it is listed by that lives elsewhere (a need with its council's sector).
type Index[R any] struct {
	// Collection names the index keys: kn:{svc}:ix:<Collection>:….
	Collection string
	// Name is the resource name of a row.
	Name func(R) string
	// Orders maps each order_by field a List accepts to the row's sort key
	// for it (see TimeKey, IntKey, DateKey, TextKey).
	Orders map[string]func(R) string
	// Tiebreak orders rows with equal sort keys, ascending in both
	// directions (typically TimeKey of the create time); nil: by name only.
	Tiebreak func(R) string
	// Fields maps each field whose equality (`f = v`, or `f:"v"` for a
	// list) is served by the index to the row's values of it. Parents are
	// fields too ("parent" → "councils/fordon").
	Fields map[string]func(R) []string
}

// memberSep ends a member's sort key and tiebreak. Sort keys hold no byte
// below 0x20 (TextKey replaces them), inverted ones none below 0x0b, so
// "a\x01…" sorts before "ab\x01…"; names never hold it.
const memberSep = "\x01"

// member is the index member of a row.
func member(key, tiebreak, name string, desc bool) string {
	if desc {
		key = invert(key)
	}
	return key + memberSep + tiebreak + memberSep + name
}

// invert turns a sort key into one that sorts the other way: each byte
// mirrored, and a 0xff terminator so that a key sorts before its own
// prefixes ("abc" before "ab"). Sort keys are UTF-8 without control
// characters, whose bytes mirror to 0x0b–0xdf, below the terminator.
func invert(key string) string {
	b := make([]byte, len(key)+1)
	for i := 0; i < len(key); i++ {
		b[i] = 0xff - key[i]
	}
	b[len(key)] = 0xff
	return string(b)
}

// MemberName is the resource name in a member.
func MemberName(m string) string {
	if i := strings.LastIndex(m, memberSep); i >= 0 {
		return m[i+1:]
	}
	return m
}

// Key is the sorted set of the collection in order (descending with desc),
// restricted to rows whose field has value when field is not empty.
func (ix *Index[R]) Key(ks store.Keyspace, order string, desc bool, field, value string) string {
	if desc {
		order += ".desc"
	}
	if field == "" {
		return ks.Key("ix", ix.Collection, order)
	}
	return ks.Key("ix", ix.Collection, order, field+"="+value)
}

// Entries are every index membership of r: what store.Tx.SetIndex writes.
func (ix *Index[R]) Entries(ks store.Keyspace, r R) []store.IndexEntry {
	name := ix.Name(r)
	tiebreak := ""
	if ix.Tiebreak != nil {
		tiebreak = ix.Tiebreak(r)
	}
	var out []store.IndexEntry
	for order, key := range ix.Orders {
		k := key(r)
		for _, desc := range []bool{false, true} {
			m := member(k, tiebreak, name, desc)
			out = append(out, store.IndexEntry{Key: ix.Key(ks, order, desc, "", ""), Member: m})
			for field, values := range ix.Fields {
				seen := map[string]bool{}
				for _, v := range values(r) {
					if seen[v] {
						continue
					}
					seen[v] = true
					out = append(out, store.IndexEntry{Key: ix.Key(ks, order, desc, field, v), Member: m})
				}
			}
		}
	}
	return out
}

// Sort keys: strings whose byte order is the order of the values.

// TimeKey sorts timestamps (microseconds since 1970, 17 digits; unset first).
func TimeKey(t *timestamppb.Timestamp) string {
	if t == nil {
		return strings.Repeat("0", 17)
	}
	return fmt.Sprintf("%017d", max(t.AsTime().UnixMicro(), 0))
}

// GoTimeKey is TimeKey of a time.Time.
func GoTimeKey(t time.Time) string { return TimeKey(timestamppb.New(t)) }

// IntKey sorts non-negative integers up to 10^width-1.
func IntKey(n int64, width int) string { return fmt.Sprintf("%0*d", width, max(n, 0)) }

// DateKey sorts dates; a missing date sorts after every date.
func DateKey(d *date.Date) string {
	if d == nil {
		return "99999999"
	}
	return fmt.Sprintf("%04d%02d%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

// MaxTextKey bounds a text sort key (names beyond it tie, then order by
// resource name).
const MaxTextKey = 120

// TextKey sorts text case-insensitively by its UTF-8 bytes: lower-cased,
// control characters as spaces, cut to MaxTextKey bytes on a rune boundary.
func TextKey(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || unicode.IsControl(r) {
			return ' '
		}
		return unicode.ToLower(r)
	}, s)
	if len(s) > MaxTextKey {
		cut := MaxTextKey
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
