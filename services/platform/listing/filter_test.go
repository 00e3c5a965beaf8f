package listing_test

import (
	"slices"
	"strings"
	"testing"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"go.einride.tech/aip/filtering"
)

var needDecls = func() *filtering.Declarations {
	d, err := filtering.NewDeclarations(
		filtering.DeclareStandardFunctions(),
		filtering.DeclareEnumIdent("state", councilsv1.CompetenceNeed_State(0).Type()),
		filtering.DeclareIdent("municipalities", filtering.TypeList(filtering.TypeString)),
		filtering.DeclareIdent("title", filtering.TypeString),
	)
	if err != nil {
		panic(err)
	}
	return d
}()

type need struct {
	name, state, title string
	municipalities     []string
}

func needValues(n need, field string) []string {
	switch field {
	case "state":
		return []string{n.state}
	case "title":
		return []string{n.title}
	case "municipalities":
		return n.municipalities
	}
	panic("no filter values for " + field)
}

var needs = []need{
	{"a", "STATE_APPROVED", "Svetsare", []string{"1480", "1384"}},
	{"b", "STATE_APPROVED", "Elektriker", []string{"1384"}},
	{"c", "STATE_DRAFT", "Svetsare", []string{"1480"}},
	{"d", "STATE_SUBMITTED", "Lärare", nil},
	{"e", "STATE_CLOSED", "Sjuksköterska", []string{"0180", "1480"}},
}

func matching(t *testing.T, filter string) []string {
	t.Helper()
	f, err := listing.ParseFilter(filter, needDecls)
	if err != nil {
		t.Fatalf("%q: %v", filter, err)
	}
	var out []string
	for _, n := range needs {
		if listing.Match(f, n, needValues) {
			out = append(out, n.name)
		}
	}
	return out
}

func TestFilterMatches(t *testing.T) {
	for _, c := range []struct {
		filter string
		want   []string
	}{
		{``, []string{"a", "b", "c", "d", "e"}},
		{`   `, []string{"a", "b", "c", "d", "e"}},
		{`state = STATE_APPROVED`, []string{"a", "b"}},
		{`STATE_APPROVED = state`, []string{"a", "b"}},
		{`state != STATE_APPROVED`, []string{"c", "d", "e"}},
		{`state = STATE_REJECTED`, nil},
		{`municipalities:"1480"`, []string{"a", "c", "e"}},
		{`municipalities:"0180"`, []string{"e"}},
		{`municipalities:"148"`, nil}, // has is membership, not substring
		{`title = "Svetsare"`, []string{"a", "c"}},
		{`title != "Svetsare"`, []string{"b", "d", "e"}},
		{`title = "Svets*"`, []string{"a", "c"}}, // a trailing * matches by prefix
		{`title = "*"`, []string{"a", "b", "c", "d", "e"}},
		{`title != "Sv*"`, []string{"b", "d", "e"}},
		{`state = STATE_APPROVED AND municipalities:"1480"`, []string{"a"}},
		{`state = STATE_APPROVED municipalities:"1480"`, []string{"a"}}, // implicit AND
		{`state = STATE_DRAFT OR state = STATE_SUBMITTED`, []string{"c", "d"}},
		{`NOT state = STATE_APPROVED`, []string{"c", "d", "e"}},
		{`-municipalities:"1480"`, []string{"b", "d"}},
		{`state != STATE_DRAFT AND state != STATE_SUBMITTED AND municipalities:"1480"`, []string{"a", "e"}},
		{`state != STATE_DRAFT state != STATE_SUBMITTED municipalities:"1480"`, []string{"a", "e"}},
		{`NOT municipalities:"1480" AND NOT state = STATE_SUBMITTED`, []string{"b"}},
		{`(state = STATE_APPROVED OR state = STATE_CLOSED) AND municipalities:"1480"`, []string{"a", "e"}},
		{`state = STATE_APPROVED OR state = STATE_CLOSED AND municipalities:"1384"`, []string{"a", "b"}}, // AIP-160: OR binds tighter than AND
	} {
		if got := matching(t, c.filter); !slices.Equal(got, c.want) {
			t.Errorf("%q matched %v, want %v", c.filter, got, c.want)
		}
	}
}

// wantFilterError checks filter is INVALID_ARGUMENT on "filter" whose one-line
// message contains each of hints.
func wantFilterError(t *testing.T, filter string, hints ...string) {
	t.Helper()
	_, err := listing.ParseFilter(filter, needDecls)
	msg := testkit.WantBadRequest(t, err, "filter")
	if strings.Contains(msg, "\n") {
		t.Errorf("%q: message spans lines:\n%s", filter, msg)
	}
	for _, h := range hints {
		if !strings.Contains(msg, h) {
			t.Errorf("%q: message %q does not say %q", filter, msg, h)
		}
	}
}

func TestFilterRejects(t *testing.T) {
	t.Run("unknown field", func(t *testing.T) {
		wantFilterError(t, `color = "red"`, `unknown field "color"`)
		wantFilterError(t, `state = STATE_DRAFT AND owner:"x"`, `unknown field "owner"`)
	})
	t.Run("unsupported operator", func(t *testing.T) {
		wantFilterError(t, `title < "M"`, `"<"`)
		wantFilterError(t, `title >= "M"`, `">="`)
		wantFilterError(t, `state > STATE_DRAFT`, `">"`)
		wantFilterError(t, `title = "a" OR municipalities:"1480" AND title <= "b"`, `"<="`)
		wantFilterError(t, `title:timestamp("2026-01-01T00:00:00Z")`, `"timestamp"`)
	})
	t.Run("enum value", func(t *testing.T) {
		for _, f := range []string{`state = STATE_NOPE`, `state = 3`, `state = "STATE_DRAFT"`} {
			wantFilterError(t, f, "STATE_APPROVED", "STATE_CLOSED")
		}
	})
	t.Run("syntax", func(t *testing.T) {
		wantFilterError(t, `(state = STATE_DRAFT`, "column 21", "expected )")
		wantFilterError(t, `state =`, "column 8", "end of filter")
		wantFilterError(t, `title = "unterminated`, "column 9", "unterminated string")
		wantFilterError(t, `state = STATE_DRAFT AND AND`, "column 25")
	})
	t.Run("equality on a list", func(t *testing.T) {
		wantFilterError(t, `municipalities = "1480"`, `municipalities:"1480"`)
	})
	t.Run("not a condition", func(t *testing.T) {
		wantFilterError(t, `state`)
	})
}

// Municipality codes look like numbers but are text: "0180" is not 180.
// Unquoted they must be refused with a message that shows the fix.
func TestUnquotedCodeIsExplained(t *testing.T) {
	wantFilterError(t, `municipalities:1480`, `municipalities:"1480"`)
	wantFilterError(t, `municipalities:0127`, `municipalities:"0127"`) // would parse as octal 87
	wantFilterError(t, `municipalities:0180`, `"0180"`, "quote")       // not even a number to the parser
	wantFilterError(t, `state = STATE_APPROVED AND municipalities:1480`, `municipalities:"1480"`)
	wantFilterError(t, `title = 12`, `title="12"`)
	wantFilterError(t, `title = Svetsare`, `title = "Svetsare"`)
}
