// Command kompetensnav runs the whole platform in one process: every
// service and the REST gateway, on Redis or, with no Redis address, on an
// embedded in-process store that keeps nothing.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/app"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "events" {
		os.Exit(eventsCommand(os.Args[2:], os.Stdout, os.Stderr))
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
	demo := config.Bool(fs, "demo", false, "load the demo dataset (five sector councils and a few needs)")
	region := councils.RegionFlag(fs)
	rf := redisx.RegisterFlags(fs, "")
	pf := process.RegisterFlags(fs)
	tokenKey := listing.TokenKeyFlag(fs)
	af := auth.RegisterFlags(fs)
	reflection := server.ReflectionFlag(fs, true)
	perr := config.Parse(fs, os.Args[1:])
	*logFormat = *pf.LogFormat
	if perr != nil {
		return perr
	}
	// A short bootstrap key is refused before anything starts.
	if _, err := auth.Bootstrap(*af.BootstrapKey); err != nil {
		return err
	}

	ctx, log, stop, err := pf.Start("kompetensnav")
	if err != nil {
		return err
	}
	defer stop()

	a, err := app.Start(ctx, app.Config{
		HTTPAddr: *httpAddr, GRPCAddr: *grpcAddr, Redis: rf.Options(), Demo: *demo,
		PageTokenKey: *tokenKey, DefaultMunicipalities: config.List(*region), Logger: log,
		BootstrapKey: *af.BootstrapKey, AuthCacheTTL: *af.CacheTTL, NoReflection: !*reflection,
	})
	if err != nil {
		return err
	}
	if *logFormat == "json" {
		if a.Embedded {
			log.Warn("no Redis address given (-redis / KN_REDIS): data lives in an embedded in-memory store and NOTHING IS KEPT when this stops",
				"embedded_store", a.RedisAddr)
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
	fmt.Printf("Kompetensnav is running\n  REST  http://%s  (API reference: http://%s/docs)\n  gRPC  %s\n", a.HTTPAddr, a.HTTPAddr, a.GRPCAddr)
	if a.GeneratedKey {
		// Printed, never logged: it is a staff credential.
		fmt.Printf("\nEvery call needs a key. No -bootstrap-key / KN_BOOTSTRAP_KEY was set, so this staff key was made for this run:\n  export KN_KEY=%s\n", a.BootstrapKey)
	}
	return a.Wait(ctx, *pf.ShutdownGrace)
}
