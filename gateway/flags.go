package gateway

import (
	"crypto/tls"
	"flag"
	"net"
	"net/http"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/tlsx"
)

// Flags are the gateway's HTTP settings, shared by the gateway binary and
// the all-in-one.
type Flags struct {
	CORSOrigins   *string
	AnonymousRate *int
	TLS           *tlsx.ServerFlags
}

// RegisterFlags defines -cors-origins, -anonymous-rate, -http-tls-cert and
// -http-tls-key (KN_CORS_ORIGINS, …) on fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	return &Flags{
		CORSOrigins: config.String(fs, "cors-origins", "",
			"browser origins whose pages may call the API (comma-separated, e.g. https://portal.example.se); empty: none"),
		AnonymousRate: config.Int(fs, "anonymous-rate", DefaultAnonymousRate,
			"calls a second one address may make without credentials before getting 429"),
		TLS: tlsx.RegisterServerFlags(fs, "http", false),
	}
}

// Apply puts the flags into cfg.
func (f *Flags) Apply(cfg *Config) {
	cfg.CORSOrigins = config.List(*f.CORSOrigins)
	cfg.AnonymousRate = *f.AnonymousRate
}

// Serve serves srv on lis, over TLS when the flags give a certificate.
func (f *Flags) Serve(srv *http.Server, lis net.Listener) error {
	c, err := f.TLS.Config()
	if err != nil {
		return err
	}
	return ServeMaybeTLS(srv, lis, c)
}

// ServeMaybeTLS serves srv on lis, over TLS with c when c is not nil.
func ServeMaybeTLS(srv *http.Server, lis net.Listener, c *tls.Config) error {
	if c == nil {
		return srv.Serve(lis)
	}
	srv.TLSConfig = c
	return srv.ServeTLS(lis, "", "")
}
