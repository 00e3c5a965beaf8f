package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// MaxCacheTTL is the longest a service may trust a verified API key
// without asking again: the most a revocation can take to reach it.
const MaxCacheTTL = 30 * time.Second

// DefaultCacheSize is how many credentials a KeyVerifier remembers.
const DefaultCacheSize = 10_000

// verifyTimeout bounds one question to the access service.
const verifyTimeout = 5 * time.Second

// KeyVerifier authenticates API keys by asking the access service
// (AccessService.GetPrincipal, with the key as the call's credential) and
// remembers the answer, a principal or a refusal, for a short TTL in an
// LRU cache. A key revoked in the access service therefore stops working
// here within the TTL. When the access service cannot be reached the call
// is UNAVAILABLE (nothing cached), never let through.
type KeyVerifier struct {
	client accessv1.AccessServiceClient
	ttl    time.Duration
	cache  *expirable.LRU[[32]byte, verdict]
	flight singleflight.Group
}

type verdict struct {
	p     *Principal
	err   error
	until time.Time
}

// NewKeyVerifier verifies keys through conn, a connection to the access
// service. ttl is how long an answer is kept (0: MaxCacheTTL; more than
// MaxCacheTTL is an error).
func NewKeyVerifier(conn grpc.ClientConnInterface, ttl time.Duration) (*KeyVerifier, error) {
	if ttl == 0 {
		ttl = MaxCacheTTL
	}
	if ttl < 0 || ttl > MaxCacheTTL {
		return nil, fmt.Errorf("the API key cache TTL must be between 0 and %s (got %s): it is how long a revoked key keeps working", MaxCacheTTL, ttl)
	}
	return &KeyVerifier{
		client: accessv1.NewAccessServiceClient(conn),
		ttl:    ttl,
		// The map key is the token's digest: a fixed size whatever was
		// sent, and no secret kept as a key.
		cache: expirable.NewLRU[[32]byte, verdict](DefaultCacheSize, nil, ttl),
	}, nil
}

// Authenticate implements Authenticator for tokens shaped like API keys.
func (v *KeyVerifier) Authenticate(ctx context.Context, token string) (*Principal, error) {
	if _, ok := ParseAPIKey(token); !ok {
		return nil, ErrNotMine
	}
	k := sha256.Sum256([]byte(token))
	if vd, ok := v.cache.Get(k); ok && time.Now().Before(vd.until) {
		return vd.p, vd.err
	}
	// Concurrent calls with one key ask once. The question outlives any
	// one caller's cancellation, since others may be waiting for it.
	res, err, _ := v.flight.Do(string(k[:]), func() (any, error) {
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), verifyTimeout)
		defer cancel()
		qctx = metadata.NewOutgoingContext(qctx, metadata.Pairs(AuthorizationHeader, "Bearer "+token))
		p, err := v.client.GetPrincipal(qctx, &accessv1.GetPrincipalRequest{})
		now := time.Now()
		switch status.Code(err) {
		case codes.OK:
			until := now.Add(v.ttl)
			if exp := p.GetExpireTime(); exp != nil && exp.AsTime().Before(until) {
				until = exp.AsTime() // an expiring key is not trusted past its expiry
			}
			v.cache.Add(k, verdict{p: p, until: until})
			return p, nil
		case codes.Unauthenticated:
			// A refusal is remembered too, so a flood of one bad key does
			// not become a flood of questions (a key cannot become valid:
			// its secret exists only once it does).
			err = status.Error(codes.Unauthenticated, status.Convert(err).Message())
			v.cache.Add(k, verdict{err: err, until: now.Add(v.ttl)})
			return nil, err
		default:
			return nil, status.Errorf(codes.Unavailable, "cannot verify the API key right now (access service: %s); retry", status.Code(err))
		}
	})
	if err != nil {
		return nil, err
	}
	return res.(*Principal), nil
}
