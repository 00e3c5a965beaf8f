package listing_test

import (
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A page token from anyone decodes to a cursor only if this process made
// it for this request; anything else is INVALID_ARGUMENT, never a panic.
func FuzzPageToken(f *testing.F) {
	tokens := listing.NewTokens("fuzz")
	scope := listing.Scope("ListNeeds", "councils/-", "", "create_time")
	f.Add(tokens.Encode(scope, []string{"AAEC"}))
	f.Add(tokens.Encode(listing.Scope("other"), []string{"x"}))
	for _, s := range []string{"", ".", "a.b", "eyJzIjoiIn0.AAAA", "!!!.???"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		cur, err := tokens.Decode(token, scope)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%q: %v", token, err)
			}
			return
		}
		if token != "" && cur == nil {
			t.Fatalf("%q decoded to nothing", token)
		}
	})
}

// Any filter text parses or is INVALID_ARGUMENT on "filter"; what parses
// can be evaluated and split into terms without a panic.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{`sector = SECTOR_RETAIL`, `municipalities:"1480" AND NOT display_name = "x"`,
		`(sector = SECTOR_RETAIL OR sector = SECTOR_OTHER) display_name != "ÅÄÖ"`, `sector =`, `"`, `((((`, `a.b.c > 3`,
		`municipalities:1480`, `display_name = "\u0000"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		parsed, err := listing.ParseFilter(filter, decls)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%q: %v", filter, err)
			}
			return
		}
		parsed.Terms()
		listing.Match(parsed, randomCouncilForFuzz, values)
	})
}
