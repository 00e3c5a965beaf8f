package pii_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
)

func key() []byte {
	b := make([]byte, pii.KeySize)
	_, _ = rand.Read(b)
	return b
}

func TestSealOpenAndRotate(t *testing.T) {
	a, b, idx := key(), key(), key()
	old, err := pii.New([][]byte{a}, idx)
	if err != nil {
		t.Fatal(err)
	}
	msg, aad := []byte("196408233234 Märta Öberg"), []byte("participants/x")
	sealed := old.Seal(msg, aad)
	if bytes.Contains(sealed, []byte("1964")) || bytes.Contains(sealed, []byte("Märta")) {
		t.Fatal("the sealed value holds the plaintext")
	}
	if bytes.Equal(sealed, old.Seal(msg, aad)) {
		t.Fatal("two seals of the same value are equal: the nonce is not random")
	}
	if pii.KeyOf(sealed) != old.SealingKeyID() || len(old.SealingKeyID()) != 8 {
		t.Fatalf("key id %q", pii.KeyOf(sealed))
	}
	// Bound to its record, and to its bytes.
	if _, err := old.Open(sealed, []byte("participants/y")); !errors.Is(err, pii.ErrCorrupt) {
		t.Fatalf("another record's: %v", err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	if _, err := old.Open(flipped, aad); !errors.Is(err, pii.ErrCorrupt) {
		t.Fatalf("altered: %v", err)
	}
	// Rotation: the new key seals, the old one still opens.
	rotated, err := pii.New([][]byte{b, a}, idx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(sealed, aad); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("old value after rotation: %q %v", got, err)
	}
	if pii.KeyOf(rotated.Seal(msg, aad)) == old.SealingKeyID() {
		t.Fatal("the rotated keys seal with the old key")
	}
	// Without the old key it does not open, and says which key it needs.
	only, _ := pii.New([][]byte{b}, idx)
	if _, err := only.Open(sealed, aad); !errors.Is(err, pii.ErrUnknownKey) || !strings.Contains(err.Error(), old.SealingKeyID()) {
		t.Fatalf("unknown key: %v", err)
	}
	// The blind index is keyed: same value, same index; another key, another.
	if old.BlindIndex("pnr", "196408233234") != rotated.BlindIndex("pnr", "196408233234") {
		t.Fatal("rotating encryption keys changed the blind index")
	}
	other, _ := pii.New([][]byte{a}, key())
	if old.BlindIndex("pnr", "196408233234") == other.BlindIndex("pnr", "196408233234") {
		t.Fatal("the blind index does not depend on its key")
	}
	if old.BlindIndex("pnr", "1") == old.BlindIndex("request", "1") {
		t.Fatal("uses are not separated")
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	a := key()
	for name, c := range map[string]struct {
		enc [][]byte
		idx []byte
	}{
		"no key":         {nil, key()},
		"short key":      {[][]byte{a[:16]}, key()},
		"short index":    {[][]byte{a}, a[:31]},
		"index is a key": {[][]byte{a}, a},
		"same key twice": {[][]byte{a, a}, key()},
	} {
		if _, err := pii.New(c.enc, c.idx); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestFlags(t *testing.T) {
	a, b, idx := key(), key(), key()
	dir := t.TempDir()
	file := filepath.Join(dir, "pii-key")
	if err := os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(a)+"\n"+base64.RawURLEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) (*pii.Keys, error) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		f := pii.RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return f.Keys(false)
	}
	k, err := parse("-pii-key-file", file, "-pii-index-key", base64.StdEncoding.EncodeToString(idx))
	if err != nil || len(k.KeyIDs()) != 2 || k.Generated {
		t.Fatalf("%v %v", k, err)
	}
	want, _ := pii.New([][]byte{a, b}, idx)
	if k.SealingKeyID() != want.SealingKeyID() || k.IndexKeyID() != want.IndexKeyID() {
		t.Fatal("the first key of the file does not seal")
	}
	secret := base64.StdEncoding.EncodeToString(a[:20])
	for name, args := range map[string][]string{
		"none":         nil,
		"no index key": {"-pii-key", base64.StdEncoding.EncodeToString(a)},
		"short":        {"-pii-key", secret, "-pii-index-key", base64.StdEncoding.EncodeToString(idx)},
		"not base64":   {"-pii-key", "not*base64", "-pii-index-key", base64.StdEncoding.EncodeToString(idx)},
		"both set":     {"-pii-key", base64.StdEncoding.EncodeToString(a), "-pii-key-file", file, "-pii-index-key", base64.StdEncoding.EncodeToString(idx)},
		"missing file": {"-pii-key-file", filepath.Join(dir, "none"), "-pii-index-key", base64.StdEncoding.EncodeToString(idx)},
	} {
		_, err := parse(args...)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error repeats the key", name)
		}
	}
	// Without any key, a binary that may generate one does.
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := pii.RegisterFlags(fs)
	_ = fs.Parse(nil)
	if k, err := f.Keys(true); err != nil || !k.Generated {
		t.Fatalf("generate: %v %v", k, err)
	}
}
