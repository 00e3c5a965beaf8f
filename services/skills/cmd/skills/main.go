// Command skills runs the skills service on its own, as the charts deploy
// it: gRPC only, Redis required, the issuer's signing key required.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"

	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/kompetensnav/kompetensnav/services/platform/tlsx"
	"github.com/kompetensnav/kompetensnav/services/skills"
	"github.com/redis/go-redis/v9"
)

func main() {
	logFormat := "text"
	if err := run(&logFormat); err != nil {
		process.Exit("skills", logFormat, err)
	}
}

func run(logFormat *string) error {
	fs := flag.NewFlagSet("skills", flag.ExitOnError)
	grpcAddr := config.String(fs, "grpc", "127.0.0.1:9090", "gRPC listen address")
	rf := redisx.RegisterFlags(fs, "127.0.0.1:6379")
	pf := process.RegisterFlags(fs)
	tokenKey := listing.TokenKeyFlag(fs)
	af := auth.RegisterFlags(fs)
	accessAddr := auth.AccessAddrFlag(fs, "127.0.0.1:9091")
	councilsAddr := peer.AddrFlag(fs, "councils")
	companiesAddr := peer.AddrFlag(fs, "companies")
	inf := skills.RegisterIssuerFlags(fs)
	sf := server.RegisterFlags(fs, false)
	// The enrolment service's completions become certificates; its
	// erasures anonymise them.
	enrolmentEvents := events.RegisterSourceFlags(fs, "enrolment")
	perr := config.Parse(fs, os.Args[1:])
	*logFormat = *pf.LogFormat
	if perr != nil {
		return perr
	}
	// Credentials signed with a key of the moment could not be verified
	// after a restart: a deployed service is given its key.
	key, err := inf.Key()
	if err != nil {
		return err
	}
	if key == nil {
		return errors.New("-issuer-key-file (KN_ISSUER_KEY_FILE) is required: the PEM Ed25519 key certificates are signed with (openssl genpkey -algorithm ed25519 -out issuer.pem)")
	}
	if *inf.URL == "" {
		return errors.New("-issuer-url (KN_ISSUER_URL) is required: the hub's public address, which credential ids are under")
	}
	issuer, err := skills.NewIssuer(*inf.Name, *inf.URL, key)
	if err != nil {
		return err
	}

	ctx, log, stop, err := pf.Start("kompetensnav-skills")
	if err != nil {
		return err
	}
	defer stop()
	rdb, err := redisx.Connect(ctx, rf.Options())
	if err != nil {
		return err
	}
	peerCreds, err := tlsx.Client(*af.AccessCA)
	if err != nil {
		return err
	}
	councils, err := peer.Dial("councils", *councilsAddr, peer.WithLogger(log), peer.WithTransport(peerCreds))
	if err != nil {
		return err
	}
	defer councils.Close()
	companies, err := peer.Dial("companies", *companiesAddr, peer.WithLogger(log), peer.WithTransport(peerCreds))
	if err != nil {
		return err
	}
	defer companies.Close()
	// Enrolment's events are read from its Redis: -enrolment-events-redis,
	// default this one.
	var enrolmentRedis redis.UniversalClient = rdb
	if o := enrolmentEvents.Options(rf.Options()); !slices.Equal(o.Addrs, rf.Options().Addrs) || o.MasterName != rf.Options().MasterName {
		if enrolmentRedis, err = redisx.Connect(ctx, o); err != nil {
			return fmt.Errorf("the enrolment service's Redis: %w", err)
		}
		defer enrolmentRedis.Close()
	}
	svc, err := skills.New(skills.Options{Redis: rdb, Logger: log, Tokens: listing.NewTokens(*tokenKey),
		Issuer: issuer, Councils: councils, Companies: companies, EnrolmentEvents: enrolmentRedis})
	if err != nil {
		return err
	}
	if err := svc.Migrate(ctx); err != nil {
		return err
	}
	// API keys are verified by the access service (cached briefly).
	accessConn, err := auth.DialAccess(*accessAddr, peerCreds)
	if err != nil {
		return err
	}
	defer accessConn.Close()
	authn, err := af.Authenticator(accessConn)
	if err != nil {
		return err
	}
	guard, err := af.NewGuard(authn, log)
	if err != nil {
		return err
	}
	guard.Protect(skills.Policy, rdb)
	opts, err := sf.Options()
	if err != nil {
		return err
	}
	srv, err := server.New(log, append(opts, server.WithGuard(guard))...)
	if err != nil {
		return err
	}
	svc.Register(srv.GRPC)
	if err := guard.Covers(srv.GRPC.GetServiceInfo()); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return err
	}
	bg := events.Start(ctx, log, svc.Background()...)
	log.Info("skills serving", "grpc", lis.Addr().String(), "issuer_key", issuer.KeyID())
	return srv.Run(ctx, lis, *pf.ShutdownGrace, bg.Stop, func() { _ = rdb.Close() })
}
