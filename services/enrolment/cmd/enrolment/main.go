// Command enrolment runs the enrolment service on its own, as the charts
// deploy it: gRPC only, Redis required, the keys that protect
// participants' personal data required (KN_PII_KEY, KN_PII_INDEX_KEY or
// their _FILE variants), and the companies and procurement services
// reachable (-companies-addr, -procurement-addr) for checking participants'
// employers and offerings' call-offs.
package main

import (
	"flag"
	"net"
	"os"

	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/kompetensnav/kompetensnav/services/platform/tlsx"
)

func main() {
	logFormat := "text"
	if err := run(&logFormat); err != nil {
		process.Exit("enrolment", logFormat, err)
	}
}

func run(logFormat *string) error {
	fs := flag.NewFlagSet("enrolment", flag.ExitOnError)
	grpcAddr := config.String(fs, "grpc", "127.0.0.1:9090", "gRPC listen address")
	rf := redisx.RegisterFlags(fs, "127.0.0.1:6379")
	pf := process.RegisterFlags(fs)
	tokenKey := listing.TokenKeyFlag(fs)
	af := auth.RegisterFlags(fs)
	accessAddr := auth.AccessAddrFlag(fs, "127.0.0.1:9091")
	sf := server.RegisterFlags(fs, false)
	kf := pii.RegisterFlags(fs)
	companiesAddr := peer.AddrFlag(fs, "companies")
	procurementAddr := peer.AddrFlag(fs, "procurement")
	perr := config.Parse(fs, os.Args[1:])
	*logFormat = *pf.LogFormat
	if perr != nil {
		return perr
	}
	// A deployed service never makes up keys: what it sealed with them
	// would be lost with the process.
	keys, err := kf.Keys(false)
	if err != nil {
		return err
	}

	ctx, log, stop, err := pf.Start("kompetensnav-enrolment")
	if err != nil {
		return err
	}
	defer stop()
	rdb, err := redisx.Connect(ctx, rf.Options())
	if err != nil {
		return err
	}
	// Peers and the access service are reached the same way: TLS when
	// -grpc-tls-ca says how to verify them.
	accessCreds, err := tlsx.Client(*af.AccessCA)
	if err != nil {
		return err
	}
	companies, err := peer.Dial("companies", *companiesAddr, peer.WithLogger(log), peer.WithTransport(accessCreds))
	if err != nil {
		return err
	}
	defer companies.Close()
	procurement, err := peer.Dial("procurement", *procurementAddr, peer.WithLogger(log), peer.WithTransport(accessCreds))
	if err != nil {
		return err
	}
	defer procurement.Close()
	svc, err := enrolment.New(enrolment.Options{
		Redis: rdb, Logger: log, Tokens: listing.NewTokens(*tokenKey), Keys: keys,
		Companies: enrolment.CompaniesOver(companies), CallOffs: enrolment.CallOffsOver(procurement),
	})
	if err != nil {
		return err
	}
	if err := svc.Migrate(ctx); err != nil {
		return err
	}
	accessConn, err := auth.DialAccess(*accessAddr, accessCreds)
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
	guard.Protect(enrolment.Policy, rdb)
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
	log.Info("enrolment serving", "grpc", lis.Addr().String(), "pii_key", keys.SealingKeyID(), "pii_index_key", keys.IndexKeyID())
	return srv.Run(ctx, lis, *pf.ShutdownGrace, bg.Stop, func() { _ = rdb.Close() })
}
