package skills

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
)

// Issuer is who signs certificates' credentials: the hub's name, the URL
// its credentials' ids are under, and its Ed25519 signing key.
type Issuer struct {
	name, url string
	key       ed25519.PrivateKey
	kid       string
}

// NewIssuer makes the issuer called name, at baseURL (the hub's public
// address, http or https), signing with key.
func NewIssuer(name, baseURL string, key ed25519.PrivateKey) (*Issuer, error) {
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("skills: the issuer needs a name (-issuer-name)")
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("skills: the issuer URL %q is not an http or https URL (-issuer-url: the hub's public address)", baseURL)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("skills: the issuer key is not an Ed25519 private key")
	}
	pub := key.Public().(ed25519.PublicKey)
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Issuer{name: name, url: strings.TrimRight(baseURL, "/"), key: key, kid: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// KeyID is the key's id in the key set and in credentials' headers: its
// RFC 7638 thumbprint.
func (i *Issuer) KeyID() string { return i.kid }

// Name is the issuer's name, as certificates and credentials give it.
func (i *Issuer) Name() string { return i.name }

// PublicKey is the key credentials verify with.
func (i *Issuer) PublicKey() ed25519.PublicKey { return i.key.Public().(ed25519.PublicKey) }

// GenerateIssuerKey makes a new Ed25519 key: for a laptop or a demo only,
// since credentials signed with it cannot be verified once it is gone.
func GenerateIssuerKey() ed25519.PrivateKey {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return key
}

// ParseIssuerKey reads an Ed25519 private key from PEM (PKCS #8, "PRIVATE
// KEY", as `openssl genpkey -algorithm ed25519` writes it).
func ParseIssuerKey(b []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block in the issuer key file")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the issuer key is not a PKCS #8 private key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the issuer key is a %T, not an Ed25519 key", k)
	}
	return key, nil
}

// MarshalIssuerKey writes key as PEM (PKCS #8).
func MarshalIssuerKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// IssuerFlags are the flags that configure the issuer.
type IssuerFlags struct {
	KeyFile, Name, URL *string
}

// DefaultIssuerName is the issuer's name unless -issuer-name says otherwise.
const DefaultIssuerName = "Kompetensnavet"

// RegisterIssuerFlags defines -issuer-key-file, -issuer-name and
// -issuer-url (KN_ISSUER_KEY_FILE, KN_ISSUER_NAME, KN_ISSUER_URL).
func RegisterIssuerFlags(fs *flag.FlagSet) *IssuerFlags {
	return &IssuerFlags{
		KeyFile: config.String(fs, "issuer-key-file", "",
			"PEM file with the Ed25519 private key certificates' credentials are signed with (openssl genpkey -algorithm ed25519)"),
		Name: config.String(fs, "issuer-name", DefaultIssuerName, "the hub's name as the issuer of certificates"),
		URL: config.String(fs, "issuer-url", "",
			"the hub's public address (https://…): the issuer's id and the base of credential ids"),
	}
}

// Key reads the key file; with no file it is nil.
func (f *IssuerFlags) Key() (ed25519.PrivateKey, error) {
	if *f.KeyFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(*f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("-issuer-key-file: %w", err)
	}
	k, err := ParseIssuerKey(b)
	if err != nil {
		return nil, fmt.Errorf("-issuer-key-file %s: %w", *f.KeyFile, err)
	}
	return k, nil
}
