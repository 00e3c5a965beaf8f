package auth

import (
	"flag"
	"fmt"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Flags are the authentication settings of a binary that serves gRPC.
type Flags struct {
	BootstrapKey *string
	CacheTTL     *time.Duration
}

// RegisterFlags defines -bootstrap-key (KN_BOOTSTRAP_KEY) and
// -auth-cache-ttl (KN_AUTH_CACHE_TTL) on fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	return &Flags{
		BootstrapKey: BootstrapKeyFlag(fs),
		CacheTTL: config.Duration(fs, "auth-cache-ttl", MaxCacheTTL,
			"how long a verified API key is trusted before the access service is asked again (at most 30s): the longest a revocation takes"),
	}
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
// the bootstrap key, and API keys verified through accessConn.
func (f *Flags) Authenticator(accessConn grpc.ClientConnInterface) (Authenticator, error) {
	boot, err := Bootstrap(*f.BootstrapKey)
	if err != nil {
		return nil, err
	}
	keys, err := NewKeyVerifier(accessConn, *f.CacheTTL)
	if err != nil {
		return nil, err
	}
	return Chain(boot, keys), nil
}

// DialAccess connects to the access service at addr (lazily: a service
// starts while the access service is still coming up; calls are
// UNAVAILABLE until it answers). In-cluster traffic is plaintext; TLS, where
// wanted, is the mesh's job.
func DialAccess(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
}
