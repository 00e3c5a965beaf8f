package access

import (
	"context"
	"errors"
	"strconv"

	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var errBadKey = status.Error(codes.Unauthenticated, "invalid credentials: unknown API key")

// Authenticator checks API keys against the service's own store: what the
// access service authenticates its callers with (every other service asks
// it, through auth.KeyVerifier).
func (s *Service) Authenticator() auth.Authenticator {
	return auth.AuthenticatorFunc(s.authenticate)
}

func (s *Service) authenticate(ctx context.Context, token string) (*auth.Principal, error) {
	id, ok := auth.ParseAPIKey(token)
	if !ok {
		return nil, auth.ErrNotMine
	}
	k, err := s.loadKey(ctx, id)
	if status.Code(err) == codes.NotFound {
		return nil, errBadKey
	}
	if err != nil {
		return nil, err
	}
	hash, err := s.st.HashFields(ctx, []string{keyKey(id)}, fieldSecretHash)
	if err != nil {
		return nil, err
	}
	if !auth.APIKeyMatches(token, hash[0][0]) {
		return nil, errBadKey
	}
	// Only the holder of the secret learns why a real key no longer works.
	if k.GetRevokeTime() != nil {
		return nil, status.Errorf(codes.Unauthenticated, "%s was revoked", k.GetName())
	}
	if exp := k.GetExpireTime(); exp != nil && !s.now().Before(exp.AsTime()) {
		return nil, status.Errorf(codes.Unauthenticated, "%s expired", k.GetName())
	}
	s.touch(ctx, id)
	return &auth.Principal{Id: k.GetName(), Role: k.GetRole(), Subject: k.GetSubject(), ExpireTime: k.GetExpireTime()}, nil
}

// touch records that key id was used, at most once per LastUsedInterval
// per process. A failure is logged: the call it authenticates goes on.
func (s *Service) touch(ctx context.Context, id string) {
	now := s.now()
	s.usedMu.Lock()
	if last, ok := s.used[id]; ok && now.Sub(last) < LastUsedInterval {
		s.usedMu.Unlock()
		return
	}
	s.used[id] = now
	s.usedMu.Unlock()
	tx := s.st.Tx()
	tx.MustExist(keyKey(id), errGone)
	tx.HSet(keyKey(id), fieldUsed, strconv.FormatInt(now.Unix(), 10))
	if _, err := tx.Commit(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, errGone) {
		s.log.WarnContext(ctx, "recording when an API key was used", "key", id, "error", err)
	}
}

var errGone = errors.New("key gone")
