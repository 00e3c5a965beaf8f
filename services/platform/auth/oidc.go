package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// OIDCConfig configures bearer tokens from the region's identity provider:
// JWTs verified offline against the provider's published keys.
type OIDCConfig struct {
	// JWKSFile is the identity provider's JSON Web Key Set, saved to a file
	// (mounted from a ConfigMap or Secret in a cluster). It is read again
	// when it changes, so keys can be rotated without a restart.
	JWKSFile string
	// Issuer must equal the token's "iss".
	Issuer string
	// Audience must be among the token's "aud".
	Audience string
	// RoleClaim holds the principal's role: staff, council, company,
	// provider, partner or auditor (or ROLE_STAFF, …).
	RoleClaim string
	// SubjectClaim holds the resource a bound role is bound to
	// (councils/{c}, companies/{c}, providers/{p}).
	SubjectClaim string
	// Leeway tolerates clock skew on exp, nbf and iat.
	Leeway time.Duration
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
	// Recheck is how often, at most, the key set file is looked at for a
	// change (default 10 s).
	Recheck time.Duration
}

// Defaults of OIDCConfig.
const (
	DefaultRoleClaim    = "kn_role"
	DefaultSubjectClaim = "kn_subject"
	DefaultOIDCLeeway   = time.Minute
)

// The signature algorithms an identity provider may use. "none" and the
// HMAC ones (a shared secret cannot be published in a key set) are not
// among them.
var oidcAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

type oidc struct {
	cfg OIDCConfig

	mu      sync.Mutex
	keys    *jose.JSONWebKeySet
	modTime time.Time
	checked time.Time
}

// NewOIDC verifies JWT bearer tokens as cfg says, with go-jose. It fails
// when the key set cannot be read or the configuration is incomplete, so a
// binary does not start half-configured.
func NewOIDC(cfg OIDCConfig) (Authenticator, error) {
	switch {
	case cfg.JWKSFile == "":
		return nil, fmt.Errorf("OIDC: no key set file (-oidc-jwks-file)")
	case cfg.Issuer == "":
		return nil, fmt.Errorf("OIDC: no issuer (-oidc-issuer)")
	case cfg.Audience == "":
		return nil, fmt.Errorf("OIDC: no audience (-oidc-audience)")
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = DefaultRoleClaim
	}
	if cfg.SubjectClaim == "" {
		cfg.SubjectClaim = DefaultSubjectClaim
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = 10 * time.Second
	}
	o := &oidc{cfg: cfg}
	if err := o.load(); err != nil {
		return nil, err
	}
	return o, nil
}

// load reads the key set when the file changed (looked at at most every
// Recheck).
func (o *oidc) load() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.keys != nil && time.Since(o.checked) < o.cfg.Recheck {
		return nil
	}
	o.checked = time.Now()
	fi, err := os.Stat(o.cfg.JWKSFile)
	if err != nil {
		return fmt.Errorf("OIDC key set: %w", err)
	}
	if o.keys != nil && fi.ModTime().Equal(o.modTime) {
		return nil
	}
	b, err := os.ReadFile(o.cfg.JWKSFile)
	if err != nil {
		return fmt.Errorf("OIDC key set: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return fmt.Errorf("OIDC key set %s is not a JSON Web Key Set: %w", o.cfg.JWKSFile, err)
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("OIDC key set %s holds no keys", o.cfg.JWKSFile)
	}
	o.keys, o.modTime = &set, fi.ModTime()
	return nil
}

func (o *oidc) keySet() *jose.JSONWebKeySet {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.keys
}

// LooksLikeJWT tells a compact JWS (three base64url parts, a JSON header)
// from other bearer tokens.
func LooksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2 && strings.HasPrefix(token, "eyJ")
}

func oidcInvalid(why string) error {
	return status.Error(codes.Unauthenticated, "invalid bearer token: "+why)
}

// Authenticate implements Authenticator.
func (o *oidc) Authenticate(_ context.Context, token string) (*Principal, error) {
	if !LooksLikeJWT(token) {
		return nil, ErrNotMine
	}
	if err := o.load(); err != nil && o.keySet() == nil {
		return nil, status.Error(codes.Unavailable, "the identity provider's keys cannot be read; retry later")
	}
	tok, err := jwt.ParseSigned(token, oidcAlgorithms)
	if err != nil {
		return nil, oidcInvalid("not a signed JWT with an accepted algorithm")
	}
	var std jwt.Claims
	extra := map[string]any{}
	if err := tok.Claims(o.keySet(), &std, &extra); err != nil {
		return nil, oidcInvalid("its signature does not verify with the identity provider's keys")
	}
	if std.Expiry == nil {
		return nil, oidcInvalid("it has no expiry (exp)")
	}
	err = std.ValidateWithLeeway(jwt.Expected{
		Issuer:      o.cfg.Issuer,
		AnyAudience: jwt.Audience{o.cfg.Audience},
		Time:        o.cfg.Now(),
	}, o.cfg.Leeway)
	switch {
	case err == nil:
	case err == jwt.ErrExpired:
		return nil, oidcInvalid("it has expired")
	case err == jwt.ErrNotValidYet || err == jwt.ErrIssuedInTheFuture:
		return nil, oidcInvalid("it is not valid yet")
	case err == jwt.ErrInvalidIssuer:
		return nil, oidcInvalid("it was issued by another issuer")
	case err == jwt.ErrInvalidAudience:
		return nil, oidcInvalid("it is meant for another audience")
	default:
		return nil, oidcInvalid("its claims do not hold")
	}
	if std.Subject == "" {
		return nil, oidcInvalid("it has no subject (sub)")
	}
	roleName, _ := extra[o.cfg.RoleClaim].(string)
	role, ok := roleByName(roleName)
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "the token's %s claim names no role of this hub", o.cfg.RoleClaim)
	}
	subject, _ := extra[o.cfg.SubjectClaim].(string)
	if coll := BoundCollection(role); coll != "" && !strings.HasPrefix(subject, coll+"/") {
		return nil, status.Errorf(codes.PermissionDenied, "a %s token needs its %s claim to name one of %s", role, o.cfg.SubjectClaim, coll)
	} else if coll == "" {
		subject = ""
	}
	return &Principal{Id: "oidc:" + std.Subject, Role: role, Subject: subject,
		ExpireTime: timestamppb.New(std.Expiry.Time())}, nil
}

// roleByName reads "staff", "ROLE_STAFF", "Staff", … as a role.
func roleByName(s string) (Role, bool) {
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "ROLE_") {
		name = "ROLE_" + name
	}
	for _, r := range AllRoles {
		if r.String() == name {
			return r, true
		}
	}
	return 0, false
}
