package auth

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// MaxTokenLen bounds a bearer token. API keys are about 60 characters and
// OIDC tokens a few kilobytes; anything longer is refused unread.
const MaxTokenLen = 8192

// AuthorizationHeader is the metadata key (and HTTP header) of credentials.
const AuthorizationHeader = "authorization"

var (
	errMissing = status.Error(codes.Unauthenticated,
		"missing credentials: send the header authorization: Bearer <API key>")
	errMalformed = status.Error(codes.Unauthenticated,
		"malformed authorization header: want exactly one \"Bearer <token>\"")
	errTooLong = status.Error(codes.Unauthenticated, "malformed authorization header: the token is too long")
)

// BearerToken is the token of the call's one "authorization: Bearer
// <token>" metadata entry, or UNAUTHENTICATED saying what is wrong with it.
// The token must be an RFC 6750 token68 (letters, digits and -._~+/ with
// trailing =), which is also what keeps it out of harm's way in logs.
func BearerToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(AuthorizationHeader)
	switch len(vals) {
	case 0:
		return "", errMissing
	case 1:
	default:
		return "", errMalformed
	}
	return ParseBearer(vals[0])
}

// ParseBearer parses the value of an authorization header.
func ParseBearer(v string) (string, error) {
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", errMalformed
	}
	if len(token) > MaxTokenLen {
		return "", errTooLong
	}
	if !isToken68(token) {
		return "", errMalformed
	}
	return token, nil
}

func isToken68(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
