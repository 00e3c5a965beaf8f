// Command kompetensnav runs the whole platform in one process: every
// service and the REST gateway, on Redis or, with no Redis address, on an
// embedded in-process store that keeps nothing.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/app"
	"github.com/kompetensnav/kompetensnav/gateway"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/kompetensnav/kompetensnav/services/platform/tlsx"
	"github.com/kompetensnav/kompetensnav/services/procurement"
	"github.com/kompetensnav/kompetensnav/services/skills"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "events" {
		os.Exit(eventsCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(loadCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "rotate-pii-key" {
		os.Exit(rotatePIIKeyCommand(os.Args[2:], os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "import-skills" {
		os.Exit(importSkillsCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	logFormat := "text"
	if err := run(&logFormat); err != nil {
		process.Exit("kompetensnav", logFormat, err)
	}
}

func run(logFormat *string) error {
	fs := flag.NewFlagSet("kompetensnav", flag.ExitOnError)
	httpAddr := config.String(fs, "http", "127.0.0.1:8080", "REST gateway listen address")
	grpcAddr := config.String(fs, "grpc", "127.0.0.1:9090", "gRPC listen address")
	demo := config.Bool(fs, "demo", false, "load the demo dataset (five sector councils, a few needs, companies with notices and coaching, providers, a framework agreement and a call-off, two funded projects, participants and an open offering)")
	region := councils.RegionFlag(fs)
	ocdsPrefix := procurement.OCDSPrefixFlag(fs)
	rf := redisx.RegisterFlags(fs, "")
	pf := process.RegisterFlags(fs)
	tokenKey := listing.TokenKeyFlag(fs)
	af := auth.RegisterFlags(fs)
	sf := server.RegisterFlags(fs, true)
	gf := gateway.RegisterFlags(fs)
	kf := pii.RegisterFlags(fs)
	inf := skills.RegisterIssuerFlags(fs)
	perr := config.Parse(fs, os.Args[1:])
	*logFormat = *pf.LogFormat
	if perr != nil {
		return perr
	}
	// A short bootstrap key is refused before anything starts, as are bad
	// keys for personal data (none at all generates keys for the run).
	if _, err := auth.Bootstrap(*af.BootstrapKey); err != nil {
		return err
	}
	keys, err := kf.Keys(true)
	if err != nil {
		return err
	}
	issuerKey, err := inf.Key()
	if err != nil {
		return err
	}

	ctx, log, stop, err := pf.Start("kompetensnav")
	if err != nil {
		return err
	}
	defer stop()

	cfg := app.Config{
		HTTPAddr: *httpAddr, GRPCAddr: *grpcAddr, Redis: rf.Options(), Demo: *demo,
		PageTokenKey: *tokenKey, DefaultMunicipalities: config.List(*region), Logger: log,
		BootstrapKey: *af.BootstrapKey, AuthCacheTTL: *af.CacheTTL, OCDSPrefix: *ocdsPrefix,
		IssuerKey: issuerKey, IssuerName: *inf.Name, IssuerURL: *inf.URL,
	}
	if err := configure(&cfg, sf, af, gf); err != nil {
		return err
	}
	cfg.PII = keys
	a, err := app.Start(ctx, cfg)
	if err != nil {
		return err
	}
	if *logFormat == "json" {
		if a.Embedded {
			log.Warn("no Redis address given (-redis / KN_REDIS): data lives in an embedded in-memory store and NOTHING IS KEPT when this stops",
				"embedded_store", a.RedisAddr)
		}
		if a.PIIGenerated {
			log.Warn(piiWarning)
		}
		if a.GeneratedIssuerKey {
			log.Warn("no -issuer-key-file / KN_ISSUER_KEY_FILE given: certificates' credentials are signed with a key made for this run, and NONE CAN BE VERIFIED after it stops",
				"issuer_key", a.IssuerKeyID)
		}
		log.Info("Kompetensnav is running", "rest", "http://"+a.HTTPAddr, "docs", "http://"+a.HTTPAddr+"/docs", "grpc", a.GRPCAddr)
		return a.Wait(ctx, *pf.ShutdownGrace)
	}
	if a.Embedded {
		fmt.Fprint(os.Stderr, `
  ************************************************************************
  *  WARNING: no Redis address given (-redis / KN_REDIS), so data lives  *
  *  in an embedded in-memory store. NOTHING IS KEPT when this stops.    *
  ************************************************************************

`)
		fmt.Fprintf(os.Stderr, "  embedded store at %s (for kompetensnav events -redis %s)\n\n", a.RedisAddr, a.RedisAddr)
	}
	if a.PIIGenerated {
		fmt.Fprintf(os.Stderr, "  WARNING: %s\n\n", piiWarning)
	}
	if a.GeneratedIssuerKey {
		fmt.Fprintf(os.Stderr, `
  ************************************************************************
  *  WARNING: no -issuer-key-file / KN_ISSUER_KEY_FILE given, so the     *
  *  certificates' credentials are signed with a key made for this run.  *
  *  NONE OF THEM CAN BE VERIFIED once it stops. For a hub:              *
  *    openssl genpkey -algorithm ed25519 -out issuer.pem                *
  ************************************************************************
  issuer key id %s

`, a.IssuerKeyID)
	}
	fmt.Printf("Kompetensnav is running\n  REST  http://%s  (API reference: http://%s/docs)\n  gRPC  %s\n", a.HTTPAddr, a.HTTPAddr, a.GRPCAddr)
	if a.GeneratedKey {
		// Printed, never logged: it is a staff credential.
		fmt.Printf("\nEvery call needs a key. No -bootstrap-key / KN_BOOTSTRAP_KEY was set, so this staff key was made for this run:\n  export KN_KEY=%s\n", a.BootstrapKey)
	}
	return a.Wait(ctx, *pf.ShutdownGrace)
}

// piiWarning is said when no keys protect participants' personal data.
const piiWarning = "no KN_PII_KEY / KN_PII_INDEX_KEY (or their _FILE variants) set, so keys were generated for this run: " +
	"participants' personal data encrypted with them is lost with them (unreadable after a restart)"

// configure turns the server, security and gateway flags into cfg.
func configure(cfg *app.Config, sf *server.Flags, af *auth.Flags, gf *gateway.Flags) error {
	var err error
	if cfg.GRPCOptions, err = sf.Options(); err != nil {
		return err
	}
	if cfg.OIDC, err = af.OIDC.Authenticator(); err != nil {
		return err
	}
	if cfg.RateLimits, err = auth.ParseRateLimits(*af.RateLimits); err != nil {
		return err
	}
	if cfg.ClientCerts, err = auth.ParseClientCertPrincipals(*af.MTLS); err != nil {
		return err
	}
	// The process calls its own gRPC server; over TLS it trusts -grpc-tls-ca,
	// or else the server's own certificate.
	ca := *af.AccessCA
	if ca == "" && *sf.TLS.Cert != "" {
		ca = *sf.TLS.Cert
	}
	if cfg.Internal, err = tlsx.Client(ca); err != nil {
		return err
	}
	if cfg.HTTPTLS, err = gf.TLS.Config(); err != nil {
		return err
	}
	gf.Apply(&cfg.Gateway)
	return nil
}
