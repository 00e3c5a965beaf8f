// Command procurement runs the procurement service on its own, as the charts
// deploy it: gRPC only, Redis required, the councils and skills services
// reachable.
package main

import (
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
	"github.com/kompetensnav/kompetensnav/services/procurement"
	"github.com/redis/go-redis/v9"
)

func main() {
	logFormat := "text"
	if err := run(&logFormat); err != nil {
		process.Exit("procurement", logFormat, err)
	}
}

func run(logFormat *string) error {
	fs := flag.NewFlagSet("procurement", flag.ExitOnError)
	grpcAddr := config.String(fs, "grpc", "127.0.0.1:9090", "gRPC listen address")
	rf := redisx.RegisterFlags(fs, "127.0.0.1:6379")
	pf := process.RegisterFlags(fs)
	tokenKey := listing.TokenKeyFlag(fs)
	af := auth.RegisterFlags(fs)
	accessAddr := auth.AccessAddrFlag(fs, "127.0.0.1:9091")
	councilsAddr := peer.AddrFlag(fs, "councils")
	skillsAddr := peer.AddrFlag(fs, "skills")
	councilsEvents := events.RegisterSourceFlags(fs, "councils")
	ocdsPrefix := procurement.OCDSPrefixFlag(fs)
	sf := server.RegisterFlags(fs, false)
	perr := config.Parse(fs, os.Args[1:])
	*logFormat = *pf.LogFormat
	if perr != nil {
		return perr
	}

	ctx, log, stop, err := pf.Start("kompetensnav-procurement")
	if err != nil {
		return err
	}
	defer stop()
	rdb, err := redisx.Connect(ctx, rf.Options())
	if err != nil {
		return err
	}
	// The councils service's events (approved needs, for the queue) are read
	// from its Redis: -councils-events-redis, default this one.
	var councilsRedis redis.UniversalClient = rdb
	if o := councilsEvents.Options(rf.Options()); !slices.Equal(o.Addrs, rf.Options().Addrs) || o.MasterName != rf.Options().MasterName {
		if councilsRedis, err = redisx.Connect(ctx, o); err != nil {
			return fmt.Errorf("the councils service's Redis: %w", err)
		}
		defer councilsRedis.Close()
	}
	peerCreds, err := tlsx.Client(*af.AccessCA)
	if err != nil {
		return err
	}
	// Needs are checked with the councils service, on the caller's behalf.
	councils, err := peer.Dial("councils", *councilsAddr, peer.WithLogger(log), peer.WithTransport(peerCreds))
	if err != nil {
		return err
	}
	defer councils.Close()
	// So are the skills of accreditations, lots and call-offs.
	skills, err := peer.Dial("skills", *skillsAddr, peer.WithLogger(log), peer.WithTransport(peerCreds))
	if err != nil {
		return err
	}
	defer skills.Close()
	svc, err := procurement.New(procurement.Options{
		Redis: rdb, Logger: log, Tokens: listing.NewTokens(*tokenKey),
		Councils: councils, Skills: skills, CouncilsEvents: councilsRedis, OCDSPrefix: *ocdsPrefix,
	})
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
	guard.Protect(procurement.Policy, rdb)
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
	log.Info("procurement serving", "grpc", lis.Addr().String())
	return srv.Run(ctx, lis, *pf.ShutdownGrace, bg.Stop, func() { _ = rdb.Close() })
}
