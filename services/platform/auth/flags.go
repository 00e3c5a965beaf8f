package auth

import (
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/tlsx"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Flags are the authentication settings of a binary that serves gRPC.
type Flags struct {
	BootstrapKey *string
	CacheTTL     *time.Duration
	OIDC         *OIDCFlags
	RateLimits   *string
	MTLS         *string
	// AccessCA is how a service verifies the access service (tlsx.Client).
	AccessCA *string
}

// OIDCFlags configure OIDC bearer tokens (see OIDCConfig).
type OIDCFlags struct {
	JWKSFile, Issuer, Audience, RoleClaim, SubjectClaim *string
	Leeway                                              *time.Duration
}

// RegisterFlags defines -bootstrap-key (KN_BOOTSTRAP_KEY), -auth-cache-ttl
// (KN_AUTH_CACHE_TTL), the -oidc-* flags and -rate-limits on fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	return &Flags{
		BootstrapKey: BootstrapKeyFlag(fs),
		CacheTTL: config.Duration(fs, "auth-cache-ttl", MaxCacheTTL,
			"how long a verified API key is trusted before the access service is asked again (at most 30s): the longest a revocation takes"),
		OIDC:       RegisterOIDCFlags(fs),
		RateLimits: RateLimitsFlag(fs),
		MTLS:       MTLSPrincipalsFlag(fs),
		AccessCA:   tlsx.ClientFlag(fs),
	}
}

// NewGuard is a guard authenticating with authn, limiting rates and
// accepting client certificates as the flags say.
func (f *Flags) NewGuard(authn Authenticator, log *slog.Logger) (*Guard, error) {
	limits, err := ParseRateLimits(*f.RateLimits)
	if err != nil {
		return nil, err
	}
	certs, err := ParseClientCertPrincipals(*f.MTLS)
	if err != nil {
		return nil, err
	}
	g := NewGuard(authn, log)
	g.LimitRate(NewRateLimiter(limits))
	if certs != nil {
		g.AcceptClientCertificates(certs)
	}
	return g, nil
}

// RegisterOIDCFlags defines -oidc-jwks-file, -oidc-issuer, -oidc-audience,
// -oidc-role-claim, -oidc-subject-claim and -oidc-leeway (KN_OIDC_…).
func RegisterOIDCFlags(fs *flag.FlagSet) *OIDCFlags {
	return &OIDCFlags{
		JWKSFile: config.String(fs, "oidc-jwks-file", "", "the identity provider's JSON Web Key Set, as a file; empty: no OIDC tokens"),
		Issuer:   config.String(fs, "oidc-issuer", "", "the issuer (iss) OIDC tokens must have"),
		Audience: config.String(fs, "oidc-audience", "", "the audience (aud) OIDC tokens must name"),
		RoleClaim: config.String(fs, "oidc-role-claim", DefaultRoleClaim,
			"the token claim holding the role (staff, council, company, provider, partner, auditor)"),
		SubjectClaim: config.String(fs, "oidc-subject-claim", DefaultSubjectClaim,
			"the token claim holding a bound role's resource (councils/{c}, companies/{c}, providers/{p})"),
		Leeway: config.Duration(fs, "oidc-leeway", DefaultOIDCLeeway, "clock skew tolerated on a token's exp, nbf and iat"),
	}
}

// Authenticator is the OIDC authenticator the flags configure, nil when no
// key set is given.
func (f *OIDCFlags) Authenticator() (Authenticator, error) {
	if *f.JWKSFile == "" {
		return nil, nil
	}
	return NewOIDC(OIDCConfig{JWKSFile: *f.JWKSFile, Issuer: *f.Issuer, Audience: *f.Audience,
		RoleClaim: *f.RoleClaim, SubjectClaim: *f.SubjectClaim, Leeway: *f.Leeway})
}

// BootstrapKeyFlag defines -bootstrap-key (KN_BOOTSTRAP_KEY) alone, for the
// access service (which needs no cache).
func BootstrapKeyFlag(fs *flag.FlagSet) *string {
	return config.String(fs, "bootstrap-key", "",
		fmt.Sprintf("a staff credential every service accepts (at least %d characters); empty: none", MinBootstrapKeyLen))
}

// AccessAddrFlag defines -access-addr (KN_ACCESS_ADDR): where a service
// that is not the access service verifies API keys.
func AccessAddrFlag(fs *flag.FlagSet, def string) *string {
	return config.String(fs, "access-addr", def, "host:port of the access service's gRPC server, which verifies API keys")
}

// Authenticator is what a service other than the access service accepts:
// the bootstrap key, OIDC tokens when configured, and API keys verified
// through accessConn.
func (f *Flags) Authenticator(accessConn grpc.ClientConnInterface) (Authenticator, error) {
	boot, err := Bootstrap(*f.BootstrapKey)
	if err != nil {
		return nil, err
	}
	oidc, err := f.OIDC.Authenticator()
	if err != nil {
		return nil, err
	}
	keys, err := NewKeyVerifier(accessConn, *f.CacheTTL)
	if err != nil {
		return nil, err
	}
	return Chain(boot, oidc, keys), nil
}

// DialAccess connects to the access service at addr (lazily: a service
// starts while the access service is still coming up; calls are
// UNAVAILABLE until it answers). In-cluster traffic is plaintext; TLS, where
// wanted, is the mesh's job.
//
// creds secure the connection (tlsx.Client: plaintext or TLS).
func DialAccess(addr string, creds credentials.TransportCredentials) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		// Spread over every replica a headless Service resolves to.
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`))
}
