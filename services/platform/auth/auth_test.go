package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestBearerHeaderParsing(t *testing.T) {
	key := auth.NewAPIKeySecret("fordon-portal")
	good := []string{"Bearer " + key, "bearer " + key, "BEARER abc.def-ghi_jkl~mno+pqr/stu==", "Bearer x"}
	for _, h := range good {
		if tok, err := auth.ParseBearer(h); err != nil || tok != h[7:] {
			t.Errorf("ParseBearer(%q) = %q, %v", h, tok, err)
		}
	}
	bad := map[string]string{
		"empty":              "",
		"scheme only":        "Bearer",
		"scheme and space":   "Bearer ",
		"two spaces":         "Bearer  " + key,
		"10 kB token":        "Bearer " + strings.Repeat("a", 10_000),
		"basic":              "Basic dXNlcjpwYXNz",
		"no scheme":          key,
		"token prefix":       "Token " + key,
		"unicode":            "Bearer kn_fördon_" + strings.Repeat("a", 43),
		"emoji":              "Bearer 🔑",
		"inner space":        "Bearer abc def",
		"equals in middle":   "Bearer ab=c",
		"control character":  "Bearer abc\x00",
		"newline":            "Bearer abc\r\nX-Evil: 1",
		"only padding":       "Bearer ==",
		"tab after scheme":   "Bearer\t" + key,
		"quoted":             `Bearer "` + key + `"`,
		"comma, two schemes": "Bearer " + key + ", Basic x",
	}
	for name, h := range bad {
		_, err := auth.ParseBearer(h)
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: ParseBearer(%.40q) = %v, want UNAUTHENTICATED", name, h, err)
		}
	}
	// From metadata: none, one, two.
	ctx := context.Background()
	if _, err := auth.BearerToken(ctx); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no metadata: %v", err)
	}
	one := metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+key))
	if tok, err := auth.BearerToken(one); err != nil || tok != key {
		t.Errorf("one: %q %v", tok, err)
	}
	two := metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+key, "authorization", "Bearer other"))
	if _, err := auth.BearerToken(two); status.Code(err) != codes.Unauthenticated {
		t.Errorf("two authorization values: %v", err)
	}
}

func TestAPIKeyFormat(t *testing.T) {
	s := auth.NewAPIKeySecret("fordon-portal")
	if s2 := auth.NewAPIKeySecret("fordon-portal"); s2 == s {
		t.Fatal("two secrets alike")
	}
	if id, ok := auth.ParseAPIKey(s); !ok || id != "fordon-portal" {
		t.Fatalf("ParseAPIKey(%q) = %q %v", s, id, ok)
	}
	random := s[len("kn_fordon-portal_"):]
	for _, bad := range []string{
		"", "kn_", "kn__" + random, "xx_fordon_" + random, "kn_fordon_" + random[1:], "kn_fordon_" + random + "a",
		"kn_Fordon_" + random, "kn_" + strings.Repeat("a", 64) + "_" + random, "kn_fordon_" + random[:42] + "=",
		"kn_fordon-portal" + random,
	} {
		if _, ok := auth.ParseAPIKey(bad); ok {
			t.Errorf("ParseAPIKey(%q) accepted", bad)
		}
	}
	h := auth.HashAPIKey(s)
	if len(h) != 64 || strings.Contains(h, random) {
		t.Fatalf("hash %q", h)
	}
	if !auth.APIKeyMatches(s, h) || auth.APIKeyMatches(auth.NewAPIKeySecret("fordon-portal"), h) || auth.APIKeyMatches(s, "") {
		t.Fatal("APIKeyMatches")
	}
}

func TestBootstrapKey(t *testing.T) {
	if a, err := auth.Bootstrap(""); a != nil || err != nil {
		t.Fatalf("empty: %v %v", a, err)
	}
	if _, err := auth.Bootstrap(strings.Repeat("k", auth.MinBootstrapKeyLen-1)); err == nil {
		t.Fatal("a 31-character bootstrap key was accepted")
	}
	key := strings.Repeat("k", auth.MinBootstrapKeyLen)
	a, err := auth.Bootstrap(key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(context.Background(), key)
	if err != nil || p.GetRole() != auth.Staff || p.GetId() != auth.BootstrapID {
		t.Fatalf("%v %v", p, err)
	}
	if _, err := a.Authenticate(context.Background(), key+"x"); !errors.Is(err, auth.ErrNotMine) {
		t.Fatalf("another token: %v", err)
	}
	// In a chain, a token nobody recognises is UNAUTHENTICATED.
	if _, err := auth.Chain(a, nil).Authenticate(context.Background(), "nope"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("chain: %v", err)
	}
}
