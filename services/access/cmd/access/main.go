// Command access runs the access service on its own, as the charts deploy
// it: gRPC only, Redis required. It authenticates its callers against its
// own store; every other service asks it to verify API keys.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/kompetensnav/kompetensnav/services/access"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/redis/go-redis/v9"
)

func main() {
	logFormat := "text"
	if err := run(&logFormat); err != nil {
		process.Exit("access", logFormat, err)
	}
}

// auditedServices are the services whose audit streams the access service
// collects by default: every service of the platform.
var auditedServices = []string{"councils", "access", "companies", "procurement", "skills"}

func run(logFormat *string) error {
	fs := flag.NewFlagSet("access", flag.ExitOnError)
	grpcAddr := config.String(fs, "grpc", "127.0.0.1:9091", "gRPC listen address")
	rf := redisx.RegisterFlags(fs, "127.0.0.1:6379")
	pf := process.RegisterFlags(fs)
	af := auth.RegisterFlags(fs)
	sf := server.RegisterFlags(fs, false)
	tokenKey := listing.TokenKeyFlag(fs)
	auditFrom := config.String(fs, "audit-from", strings.Join(auditedServices, ","),
		"services whose audit streams to collect (comma-separated)")
	sourceFlags := map[string]*events.SourceFlags{}
	for _, svc := range auditedServices {
		sourceFlags[svc] = events.RegisterSourceFlags(fs, svc)
	}
	perr := config.Parse(fs, os.Args[1:])
	*logFormat = *pf.LogFormat
	if perr != nil {
		return perr
	}

	boot, err := auth.Bootstrap(*af.BootstrapKey)
	if err != nil {
		return err
	}
	oidc, err := af.OIDC.Authenticator()
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
	// Each audited service's stream is read from that service's Redis
	// (-<service>-events-redis, default this one).
	sources := map[string]redis.UniversalClient{}
	for _, name := range config.List(*auditFrom) {
		f, ok := sourceFlags[name]
		if !ok {
			return fmt.Errorf("-audit-from: %q is not a service of the platform (%s)", name, strings.Join(auditedServices, ", "))
		}
		o := f.Options(rf.Options())
		if slices.Equal(o.Addrs, rf.Options().Addrs) && o.MasterName == rf.Options().MasterName {
			sources[name] = rdb
			continue
		}
		src, err := redisx.Connect(ctx, o)
		if err != nil {
			return fmt.Errorf("the %s service's Redis: %w", name, err)
		}
		defer src.Close()
		sources[name] = src
	}
	svc, err := access.New(access.Options{Redis: rdb, Logger: log, Tokens: listing.NewTokens(*tokenKey), AuditSources: sources})
	if err != nil {
		return err
	}
	background, err := svc.Background()
	if err != nil {
		return err
	}
	// The access service checks API keys against its own store.
	guard, err := af.NewGuard(auth.Chain(boot, oidc, svc.Authenticator()), log)
	if err != nil {
		return err
	}
	guard.Protect(access.Policy, rdb)
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
	bg := events.Start(ctx, log, background...)
	log.Info("access serving", "grpc", lis.Addr().String())
	return srv.Run(ctx, lis, *pf.ShutdownGrace, bg.Stop, func() { _ = rdb.Close() })
}
