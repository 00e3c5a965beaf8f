// Command councils runs the councils service on its own, as the charts
// deploy it: gRPC only, Redis required.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"slices"

	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/kompetensnav/kompetensnav/services/platform/tlsx"
	"github.com/redis/go-redis/v9"
)

func main() {
	logFormat := "text"
	if err := run(&logFormat); err != nil {
		process.Exit("councils", logFormat, err)
	}
}

func run(logFormat *string) error {
	fs := flag.NewFlagSet("councils", flag.ExitOnError)
	grpcAddr := config.String(fs, "grpc", "127.0.0.1:9090", "gRPC listen address")
	region := councils.RegionFlag(fs)
	rf := redisx.RegisterFlags(fs, "127.0.0.1:6379")
	// The companies service's notices make the demand signal.
	companiesEvents := events.RegisterSourceFlags(fs, "companies")
	pf := process.RegisterFlags(fs)
	tokenKey := listing.TokenKeyFlag(fs)
	af := auth.RegisterFlags(fs)
	accessAddr := auth.AccessAddrFlag(fs, "127.0.0.1:9091")
	sf := server.RegisterFlags(fs, false)
	procurementEvents := events.RegisterSourceFlags(fs, "procurement")
	perr := config.Parse(fs, os.Args[1:])
	*logFormat = *pf.LogFormat
	if perr != nil {
		return perr
	}

	ctx, log, stop, err := pf.Start("kompetensnav-councils")
	if err != nil {
		return err
	}
	defer stop()
	rdb, err := redisx.Connect(ctx, rf.Options())
	if err != nil {
		return err
	}
	// Procurement's events (awarded call-offs) are read from its Redis:
	// -procurement-events-redis, default this one.
	var procurementRedis redis.UniversalClient = rdb
	if o := procurementEvents.Options(rf.Options()); !slices.Equal(o.Addrs, rf.Options().Addrs) || o.MasterName != rf.Options().MasterName {
		if procurementRedis, err = redisx.Connect(ctx, o); err != nil {
			return fmt.Errorf("the procurement service's Redis: %w", err)
		}
		defer procurementRedis.Close()
	}
	companiesRedis := rdb
	if opts := companiesEvents.Options(nil); opts != nil {
		if companiesRedis, err = redisx.Connect(ctx, opts); err != nil {
			return err
		}
		defer companiesRedis.Close()
	}
	svc, err := councils.New(councils.Options{
		Redis: rdb, Logger: log, Tokens: listing.NewTokens(*tokenKey),
		DefaultMunicipalities: config.List(*region), CompaniesEvents: companiesRedis, ProcurementEvents: procurementRedis,
	})
	if err != nil {
		return err
	}
	if err := svc.Migrate(ctx); err != nil {
		return err
	}
	// API keys are verified by the access service (cached briefly).
	accessCreds, err := tlsx.Client(*af.AccessCA)
	if err != nil {
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
	guard.Protect(councils.Policy, rdb)
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
	log.Info("councils serving", "grpc", lis.Addr().String())
	return srv.Run(ctx, lis, *pf.ShutdownGrace, bg.Stop, func() { _ = rdb.Close() })
}
