// Package pii protects participants' personal data at rest: AES-256-GCM
// encryption with a key id stored in every ciphertext (so keys can rotate:
// the first key seals, every listed key opens), and a keyed HMAC-SHA256
// blind index, so that a person can be found, and registered only once, by
// their personal identity number without the number being stored in clear.
//
// The two keys are separate: the blind index is a deterministic function
// of the number and must stay the same for as long as the index exists,
// while encryption keys rotate. Neither key is ever stored beside the data.
package pii

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"google.golang.org/protobuf/proto"
)

// KeySize is the size of every key: 256 bits.
const KeySize = 32

// Keys seal and open personal data and compute blind indexes.
type Keys struct {
	seal  *aeadKey            // the current key: seals everything new
	open  map[string]*aeadKey // every key, by id: opens what they sealed
	index []byte
	// indexID identifies the blind-index key without revealing it.
	indexID string
	// Generated says the keys were made for this process because none was
	// configured: what they seal is lost with the process.
	Generated bool
}

type aeadKey struct {
	id   string
	aead cipher.AEAD
}

// New builds Keys from encryption keys (the first seals; all open) and
// the blind-index key, each 32 bytes.
func New(encryption [][]byte, index []byte) (*Keys, error) {
	if len(encryption) == 0 {
		return nil, errors.New("pii: no encryption key")
	}
	if len(index) != KeySize {
		return nil, fmt.Errorf("pii: the blind-index key has %d bytes, want %d", len(index), KeySize)
	}
	k := &Keys{open: map[string]*aeadKey{}, index: bytes.Clone(index), indexID: keyID("index", index)}
	for i, raw := range encryption {
		if len(raw) != KeySize {
			return nil, fmt.Errorf("pii: encryption key %d has %d bytes, want %d", i+1, len(raw), KeySize)
		}
		if bytes.Equal(raw, index) {
			return nil, errors.New("pii: the blind-index key must not be an encryption key")
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		ak := &aeadKey{id: keyID("seal", raw), aead: aead}
		if _, dup := k.open[ak.id]; dup {
			return nil, fmt.Errorf("pii: encryption key %d is listed twice", i+1)
		}
		k.open[ak.id] = ak
		if k.seal == nil {
			k.seal = ak
		}
	}
	return k, nil
}

// Generate makes random keys for one process (Generated is set).
func Generate() *Keys {
	enc, idx := make([]byte, KeySize), make([]byte, KeySize)
	_, _ = rand.Read(enc)
	_, _ = rand.Read(idx)
	k, err := New([][]byte{enc}, idx)
	if err != nil {
		panic(err) // sizes are right by construction
	}
	k.Generated = true
	return k
}

// keyID names a key by a short digest of it: 8 hex digits, enough to tell
// a handful of keys apart, far too few to learn anything about the key.
func keyID(use string, key []byte) string {
	h := sha256.Sum256(append([]byte("kompetensnav/pii/"+use+"\x00"), key...))
	return hex.EncodeToString(h[:4])
}

// SealingKeyID is the id of the key that seals.
func (k *Keys) SealingKeyID() string { return k.seal.id }

// KeyIDs are the ids of every key that opens, the sealing one first.
func (k *Keys) KeyIDs() []string {
	ids := []string{k.seal.id}
	for id := range k.open {
		if id != k.seal.id {
			ids = append(ids, id)
		}
	}
	return ids
}

// IndexKeyID identifies the blind-index key.
func (k *Keys) IndexKeyID() string { return k.indexID }

// A sealed value is "<key id>:" followed by the 12-byte nonce and the GCM
// ciphertext with its tag.
const idLen = 8

// Seal encrypts plaintext with the sealing key. aad binds the ciphertext
// to where it belongs (the resource name), so a ciphertext copied to
// another record does not open there.
func (k *Keys) Seal(plaintext, aad []byte) []byte {
	nonce := make([]byte, k.seal.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := make([]byte, 0, idLen+1+len(nonce)+len(plaintext)+k.seal.aead.Overhead())
	out = append(out, k.seal.id...)
	out = append(out, ':')
	out = append(out, nonce...)
	return k.seal.aead.Seal(out, nonce, plaintext, aad)
}

// ErrUnknownKey is what Open returns for a value sealed with a key it does
// not have (KeyOf names it).
var ErrUnknownKey = errors.New("pii: sealed with a key that is not configured")

// ErrCorrupt is what Open returns for a value that is not a sealed value
// of these keys, or was altered, or belongs to another record.
var ErrCorrupt = errors.New("pii: the sealed value does not open (altered, or not this record's)")

// KeyOf is the id of the key that sealed b ("" if b is not a sealed value).
func KeyOf(b []byte) string {
	if len(b) <= idLen || b[idLen] != ':' {
		return ""
	}
	return string(b[:idLen])
}

// Open decrypts what Seal sealed with the same aad.
func (k *Keys) Open(sealed, aad []byte) ([]byte, error) {
	id := KeyOf(sealed)
	if id == "" {
		return nil, ErrCorrupt
	}
	ak := k.open[id]
	if ak == nil {
		return nil, fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	rest := sealed[idLen+1:]
	if len(rest) < ak.aead.NonceSize()+ak.aead.Overhead() {
		return nil, ErrCorrupt
	}
	nonce, ct := rest[:ak.aead.NonceSize()], rest[ak.aead.NonceSize():]
	pt, err := ak.aead.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// BlindIndex is the keyed hash a value is found by (hex HMAC-SHA256 under
// the blind-index key, with use separating kinds of value): the same value
// always gives the same index, and without the key the index says nothing
// about the value, even for values as guessable as personal identity
// numbers.
func (k *Keys) BlindIndex(use, value string) string {
	m := hmac.New(sha256.New, k.index)
	m.Write([]byte(use + "\x00" + value))
	return hex.EncodeToString(m.Sum(nil))
}

// Fingerprint identifies a request that holds personal data, for
// idempotency records: keyed like BlindIndex, because a plain hash of a
// request with a personal identity number in it could be reversed by
// trying every number.
func (k *Keys) Fingerprint(req proto.Message) string {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	return k.BlindIndex("request", string(b))[:32]
}

// Flags are the key settings of a binary that runs the enrolment service.
type Flags struct {
	Key, KeyFile, IndexKey, IndexKeyFile *string
}

// RegisterFlags defines -pii-key, -pii-key-file, -pii-index-key and
// -pii-index-key-file (KN_PII_KEY, …) on fs. Prefer the environment or
// the files to the flags: a flag's value shows in the process list.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	return &Flags{
		Key: config.String(fs, "pii-key", "",
			"base64 AES-256 key(s) that encrypt participants' personal data; comma-separated to rotate: the first encrypts, all decrypt"),
		KeyFile: config.String(fs, "pii-key-file", "", "file holding the -pii-key value (a mounted secret)"),
		IndexKey: config.String(fs, "pii-index-key", "",
			"base64 256-bit key of the blind index participants are found by (must not change while the data exists)"),
		IndexKeyFile: config.String(fs, "pii-index-key-file", "", "file holding the -pii-index-key value"),
	}
}

// Keys reads the configured keys. With none configured at all it
// generates keys when generate is true (the all-in-one, which then warns)
// and fails otherwise; configuring only one of the two is an error.
func (f *Flags) Keys(generate bool) (*Keys, error) {
	enc, err := value("pii-key", *f.Key, *f.KeyFile)
	if err != nil {
		return nil, err
	}
	idx, err := value("pii-index-key", *f.IndexKey, *f.IndexKeyFile)
	if err != nil {
		return nil, err
	}
	switch {
	case enc == "" && idx == "" && generate:
		return Generate(), nil
	case enc == "":
		return nil, errors.New("no key for participants' personal data: set KN_PII_KEY or KN_PII_KEY_FILE (32 random bytes, base64: openssl rand -base64 32)")
	case idx == "":
		return nil, errors.New("no blind-index key: set KN_PII_INDEX_KEY or KN_PII_INDEX_KEY_FILE (32 random bytes, base64, not the same as KN_PII_KEY)")
	}
	var keys [][]byte
	for i, s := range strings.FieldsFunc(enc, func(r rune) bool { return r == ',' || r == '\n' || r == ' ' || r == '\t' || r == '\r' }) {
		b, err := decodeKey(s)
		if err != nil {
			return nil, fmt.Errorf("KN_PII_KEY: key %d %w", i+1, err)
		}
		keys = append(keys, b)
	}
	ib, err := decodeKey(strings.TrimSpace(idx))
	if err != nil {
		return nil, fmt.Errorf("KN_PII_INDEX_KEY: %w", err)
	}
	return New(keys, ib)
}

func value(name, direct, file string) (string, error) {
	if direct != "" && file != "" {
		return "", fmt.Errorf("-%s and -%s-file are both set; set one", name, name)
	}
	if file == "" {
		return direct, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("-%s-file: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// decodeKey reads a base64 key (standard or URL alphabet, padded or not),
// never echoing it in an error.
func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("is %d bytes, want %d (32 random bytes, base64)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("is not base64")
}
