package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// idp is a test identity provider: keys, a published key set, a signer.
type idp struct {
	t      testing.TB
	key    *ecdsa.PrivateKey
	file   string
	signer jose.Signer
}

const (
	issuer   = "https://login.goteborgsregionen.example/realms/hub"
	audience = "kompetensnav"
)

func newIDP(t testing.TB) *idp {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}}}
	b, _ := json.Marshal(set)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return &idp{t: t, key: key, file: file, signer: signer}
}

func (p *idp) token(std jwt.Claims, extra map[string]any) string {
	p.t.Helper()
	s, err := jwt.Signed(p.signer).Claims(std).Claims(extra).Serialize()
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

func valid(now time.Time) jwt.Claims {
	return jwt.Claims{Issuer: issuer, Audience: jwt.Audience{audience, "other"}, Subject: "anna.handlaggare",
		Expiry: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now)}
}

func TestOIDCTokens(t *testing.T) {
	p := newIDP(t)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	a, err := auth.NewOIDC(auth.OIDCConfig{JWKSFile: p.file, Issuer: issuer, Audience: audience,
		Leeway: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	got, err := a.Authenticate(ctx, p.token(valid(now), map[string]any{"kn_role": "staff"}))
	if err != nil || got.GetRole() != auth.Staff || got.GetId() != "oidc:anna.handlaggare" || got.GetSubject() != "" {
		t.Fatalf("staff token: %v %v", got, err)
	}
	got, err = a.Authenticate(ctx, p.token(valid(now), map[string]any{"kn_role": "ROLE_COUNCIL", "kn_subject": "councils/fordon"}))
	if err != nil || got.GetRole() != auth.Council || got.GetSubject() != "councils/fordon" {
		t.Fatalf("council token: %v %v", got, err)
	}
	// Inside the leeway a just-expired token still works.
	std := valid(now)
	std.Expiry = jwt.NewNumericDate(now.Add(-30 * time.Second))
	if _, err := a.Authenticate(ctx, p.token(std, map[string]any{"kn_role": "staff"})); err != nil {
		t.Fatalf("expired within the leeway: %v", err)
	}

	other := newIDP(t) // signs with a key the hub does not know
	for name, c := range map[string]struct {
		token string
		code  codes.Code
		want  string
	}{
		"expired":          {p.token(with(valid(now), func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Hour)) }), map[string]any{"kn_role": "staff"}), codes.Unauthenticated, "expired"},
		"not yet valid":    {p.token(with(valid(now), func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) }), map[string]any{"kn_role": "staff"}), codes.Unauthenticated, "not valid yet"},
		"other issuer":     {p.token(with(valid(now), func(c *jwt.Claims) { c.Issuer = "https://evil.example" }), map[string]any{"kn_role": "staff"}), codes.Unauthenticated, "another issuer"},
		"other audience":   {p.token(with(valid(now), func(c *jwt.Claims) { c.Audience = jwt.Audience{"someone-else"} }), map[string]any{"kn_role": "staff"}), codes.Unauthenticated, "another audience"},
		"no expiry":        {p.token(with(valid(now), func(c *jwt.Claims) { c.Expiry = nil }), map[string]any{"kn_role": "staff"}), codes.Unauthenticated, "no expiry"},
		"unknown key":      {other.token(valid(now), map[string]any{"kn_role": "staff"}), codes.Unauthenticated, "signature"},
		"no role":          {p.token(valid(now), nil), codes.PermissionDenied, "kn_role"},
		"unknown role":     {p.token(valid(now), map[string]any{"kn_role": "superuser"}), codes.PermissionDenied, "kn_role"},
		"council unbound":  {p.token(valid(now), map[string]any{"kn_role": "council"}), codes.PermissionDenied, "kn_subject"},
		"tampered payload": {tamper(p.token(valid(now), map[string]any{"kn_role": "partner"})), codes.Unauthenticated, ""},
		"alg none":         {unsigned(valid(now)), codes.Unauthenticated, ""},
	} {
		_, err := a.Authenticate(ctx, c.token)
		if st := status.Convert(err); st.Code() != c.code || !strings.Contains(st.Message(), c.want) {
			t.Errorf("%s: %v, want %v mentioning %q", name, err, c.code, c.want)
		}
	}
	// Other kinds of token are someone else's to judge.
	if _, err := a.Authenticate(ctx, "kn_abc_"+strings.Repeat("x", 43)); err != auth.ErrNotMine {
		t.Errorf("an API key: %v", err)
	}
}

func with(c jwt.Claims, edit func(*jwt.Claims)) jwt.Claims { edit(&c); return c }

// tamper swaps the payload of a signed token for another one, keeping the
// signature: a partner trying to become staff.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	b, _ := json.Marshal(map[string]any{"iss": issuer, "aud": audience, "sub": "x", "kn_role": "staff",
		"exp": time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC).Unix()})
	parts[1] = b64(b)
	return strings.Join(parts, ".")
}

// unsigned is a token with "alg": "none".
func unsigned(c jwt.Claims) string {
	h := b64([]byte(`{"alg":"none","typ":"JWT"}`))
	b, _ := json.Marshal(c)
	return h + "." + b64(b) + "."
}

func TestOIDCNeedsAReadableKeySetAndSettings(t *testing.T) {
	p := newIDP(t)
	for name, cfg := range map[string]auth.OIDCConfig{
		"no file":     {Issuer: issuer, Audience: audience},
		"no issuer":   {JWKSFile: p.file, Audience: audience},
		"no audience": {JWKSFile: p.file, Issuer: issuer},
		"missing":     {JWKSFile: filepath.Join(t.TempDir(), "nope.json"), Issuer: issuer, Audience: audience},
	} {
		if _, err := auth.NewOIDC(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(bad, []byte(`{"keys": "no"}`), 0o600)
	if _, err := auth.NewOIDC(auth.OIDCConfig{JWKSFile: bad, Issuer: issuer, Audience: audience}); err == nil {
		t.Error("a file that is not a key set: accepted")
	}
}

// The key set is read again when the file changes: the provider rotated.
func TestOIDCKeyRotation(t *testing.T) {
	first := newIDP(t)
	now := time.Now()
	a, err := auth.NewOIDC(auth.OIDCConfig{JWKSFile: first.file, Issuer: issuer, Audience: audience, Recheck: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	second := newIDP(t)
	tok := second.token(valid(now), map[string]any{"kn_role": "staff"})
	if _, err := a.Authenticate(context.Background(), tok); err == nil {
		t.Fatal("a token of a key not yet published was accepted")
	}
	b, _ := os.ReadFile(second.file)
	later := time.Now().Add(time.Second)
	if err := os.WriteFile(first.file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(first.file, later, later)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := a.Authenticate(context.Background(), tok); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotated key set was not picked up")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
