package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Whatever a client puts in its authorization header, parsing answers a
// token or UNAUTHENTICATED, never a panic or another code.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer kn_fordon_" + strings.Repeat("A", 43), "Bearer", "Bearer ", "bearer x", "Basic dXNlcg==",
		"Bearer a b", "Bearer ÅÄÖ", "Bearer " + strings.Repeat("x", 9000), "Bearer abc==", "Bearer ==abc", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := auth.ParseBearer(header)
		if err != nil {
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("%q: %v", header, err)
			}
			return
		}
		if tok == "" || len(tok) > auth.MaxTokenLen || strings.ContainsAny(tok, " \t\r\n\x00") {
			t.Fatalf("%q gave token %q", header, tok)
		}
	})
}

// An API key's id is recovered only from a well-formed secret, and a
// well-formed secret round-trips.
func FuzzParseAPIKey(f *testing.F) {
	f.Add(auth.NewAPIKeySecret("fordon-portal"))
	for _, s := range []string{"kn_", "kn__", "kn_a_b", "kn_Fordon_" + strings.Repeat("A", 43), "kn_a_" + strings.Repeat("=", 43), "nk_a_b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, ok := auth.ParseAPIKey(token)
		if !ok {
			return
		}
		if id == "" || !strings.HasPrefix(token, auth.APIKeyPrefix+id+"_") {
			t.Fatalf("%q gave id %q", token, id)
		}
		if !auth.APIKeyMatches(token, auth.HashAPIKey(token)) {
			t.Fatalf("%q does not match its own hash", token)
		}
	})
}

// A bearer token from anyone is judged without a panic: refused as
// UNAUTHENTICATED or PERMISSION_DENIED, or not a JWT at all.
func FuzzOIDCToken(f *testing.F) {
	p := newIDP(f)
	now := time.Now()
	a, err := auth.NewOIDC(auth.OIDCConfig{JWKSFile: p.file, Issuer: issuer, Audience: audience})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p.token(valid(now), map[string]any{"kn_role": "council", "kn_subject": "councils/fordon"}))
	f.Add(unsigned(valid(now)))
	f.Add("eyJ.eyJ.")
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
	f.Fuzz(func(t *testing.T, token string) {
		pr, err := a.Authenticate(context.Background(), token)
		switch {
		case err == auth.ErrNotMine:
		case err != nil:
			if c := status.Code(err); c != codes.Unauthenticated && c != codes.PermissionDenied {
				t.Fatalf("%q: %v", token, err)
			}
		case pr == nil || pr.GetRole() == 0:
			t.Fatalf("%q: accepted as %v", token, pr)
		}
	})
}
