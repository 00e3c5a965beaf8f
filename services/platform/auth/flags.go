package auth

import (
	"flag"
	"fmt"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"google.golang.org/grpc"
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
		BootstrapKey: config.String(fs, "bootstrap-key", "",
			fmt.Sprintf("a staff credential every service accepts (at least %d characters); empty: none", MinBootstrapKeyLen)),
		CacheTTL: config.Duration(fs, "auth-cache-ttl", MaxCacheTTL,
			"how long a verified API key is trusted before the access service is asked again (at most 30s): the longest a revocation takes"),
	}
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
