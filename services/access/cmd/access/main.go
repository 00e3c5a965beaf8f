// Command access runs the access service on its own, as the charts deploy
// it: gRPC only, Redis required. It authenticates its callers against its
// own store; every other service asks it to verify API keys.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/kompetensnav/kompetensnav/services/access"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "access:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("access", flag.ExitOnError)
	grpcAddr := config.String(fs, "grpc", "127.0.0.1:9091", "gRPC listen address")
	rf := redisx.RegisterFlags(fs, "127.0.0.1:6379")
	pf := process.RegisterFlags(fs)
	bootstrapKey := auth.BootstrapKeyFlag(fs)
	reflection := server.ReflectionFlag(fs, false)
	tokenKey := listing.TokenKeyFlag(fs)
	_ = fs.Parse(os.Args[1:])

	boot, err := auth.Bootstrap(*bootstrapKey)
	if err != nil {
		return err
	}
	ctx, log, stop, err := pf.Start("kompetensnav-access")
	if err != nil {
		return err
	}
	defer stop()
	rdb, err := redisx.Connect(ctx, rf.Options())
	if err != nil {
		return err
	}
	svc, err := access.New(access.Options{Redis: rdb, Logger: log, Tokens: listing.NewTokens(*tokenKey)})
	if err != nil {
		return err
	}
	guard := auth.NewGuard(auth.Chain(boot, svc.Authenticator()), log)
	guard.Protect(access.Policy, rdb)
	srv, err := server.New(log, server.WithGuard(guard), server.Reflection(*reflection))
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
	log.Info("access serving", "grpc", lis.Addr().String())
	return srv.Run(ctx, lis, *pf.ShutdownGrace, func() { _ = rdb.Close() })
}
