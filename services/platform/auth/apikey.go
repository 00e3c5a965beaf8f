package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// An API key's secret is "kn_<key id>_<random>": the prefix lets secret
// scanners find leaked keys, the id (lower-case letters, digits and
// hyphens; never an underscore) finds the key without a lookup by secret,
// and the random part is 32 bytes (256 bits) of crypto/rand, base64url
// without padding (43 characters, which may contain "_" and "-").
const (
	APIKeyPrefix    = "kn_"
	apiKeyRandBytes = 32
	apiKeyRandLen   = 43 // base64.RawURLEncoding.EncodedLen(apiKeyRandBytes)
	maxKeyIDLen     = 63
)

// NewAPIKeySecret makes the secret of a new key with id keyID.
func NewAPIKeySecret(keyID string) string {
	b := make([]byte, apiKeyRandBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return APIKeyPrefix + keyID + "_" + base64.RawURLEncoding.EncodeToString(b)
}

// ParseAPIKey returns the key id of a token shaped like an API key secret.
// A false answer means the token is not an API key at all.
func ParseAPIKey(token string) (keyID string, ok bool) {
	rest, ok := strings.CutPrefix(token, APIKeyPrefix)
	if !ok {
		return "", false
	}
	id, random, ok := strings.Cut(rest, "_")
	if !ok || id == "" || len(id) > maxKeyIDLen || len(random) != apiKeyRandLen {
		return "", false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "", false
		}
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(random); err != nil {
		return "", false
	}
	return id, true
}

// HashAPIKey is what is stored instead of a secret: its SHA-256, in hex. A
// plain hash is enough for 256 random bits (no dictionary to try), and
// cheap enough to check on every cache miss.
func HashAPIKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// APIKeyMatches compares secret with a stored HashAPIKey in constant time.
func APIKeyMatches(secret, storedHash string) bool {
	got := HashAPIKey(secret)
	return subtle.ConstantTimeCompare([]byte(got), []byte(storedHash)) == 1
}
