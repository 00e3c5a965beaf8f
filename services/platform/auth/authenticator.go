package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// An Authenticator turns a bearer token into a Principal. It returns
// ErrNotMine for a token that is not of its kind (so that Chain asks the
// next one), an UNAUTHENTICATED status for a token of its kind that is not
// valid (unknown, expired, revoked), and UNAVAILABLE when it cannot tell
// right now. OIDC/JWT bearer tokens are another implementation.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*Principal, error)
}

// ErrNotMine is what an Authenticator returns for a token of another kind.
var ErrNotMine = errors.New("auth: not a credential of this kind")

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(ctx context.Context, token string) (*Principal, error)

// Authenticate implements Authenticator.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, token string) (*Principal, error) {
	return f(ctx, token)
}

// Chain asks each authenticator in turn (nils are skipped); the first that
// recognises the token decides. A token none recognises is UNAUTHENTICATED.
func Chain(as ...Authenticator) Authenticator {
	var list []Authenticator
	for _, a := range as {
		if a != nil {
			list = append(list, a)
		}
	}
	return AuthenticatorFunc(func(ctx context.Context, token string) (*Principal, error) {
		for _, a := range list {
			p, err := a.Authenticate(ctx, token)
			if errors.Is(err, ErrNotMine) {
				continue
			}
			return p, err
		}
		return nil, errInvalid
	})
}

var errInvalid = status.Error(codes.Unauthenticated, "invalid credentials: the bearer token is not a valid API key")

// MinBootstrapKeyLen is the shortest bootstrap key accepted.
const MinBootstrapKeyLen = 32

// BootstrapID is the principal id of the bootstrap key.
const BootstrapID = "bootstrap"

// Bootstrap accepts key as a staff credential: the key operators start with,
// before any API key exists (and the one the all-in-one's demo loader and
// background jobs of a small hub use). An empty key gives a nil
// Authenticator (none); one shorter than MinBootstrapKeyLen is an error, so
// a binary refuses to start with a guessable key.
func Bootstrap(key string) (Authenticator, error) {
	if key == "" {
		return nil, nil
	}
	if len(key) < MinBootstrapKeyLen {
		return nil, fmt.Errorf("the bootstrap key must be at least %d characters (it has %d)", MinBootstrapKeyLen, len(key))
	}
	sum := sha256.Sum256([]byte(key))
	return AuthenticatorFunc(func(_ context.Context, token string) (*Principal, error) {
		// Comparing digests keeps the comparison constant-time whatever
		// the token's length.
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], sum[:]) != 1 {
			return nil, ErrNotMine
		}
		return &Principal{Id: BootstrapID, Role: Staff}, nil
	}), nil
}
