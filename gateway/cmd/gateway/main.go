// Command gateway serves the Kompetensnav REST API, the OpenAPI document and
// the API reference page, translating each call into gRPC to the backend
// services.
//
// Every flag can also be set in the environment (KN_ + the flag name in
// upper case, dashes as underscores); a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/kompetensnav/kompetensnav/gateway"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"github.com/kompetensnav/kompetensnav/services/platform/tlsx"
)

func main() {
	logFormat := "text"
	if err := run(&logFormat); err != nil {
		process.Exit("gateway", logFormat, err)
	}
}

func run(logFormat *string) error {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	httpAddr := config.String(fs, "http", "127.0.0.1:8080", "address to serve HTTP on")
	addrs := map[string]*string{}
	for _, s := range gateway.Services {
		addrs[s.Name] = config.String(fs, gateway.AddrFlag(s.Name), "127.0.0.1:9090", "host:port of the "+s.Name+" service's gRPC server")
	}
	timeout := config.Duration(fs, "request-timeout", gateway.DefaultRequestTimeout, "longest a request may take, backend call included")
	pf := process.RegisterFlags(fs)
	gf := gateway.RegisterFlags(fs)
	backendCA := tlsx.ClientFlag(fs)
	perr := config.Parse(fs, os.Args[1:])
	*logFormat = *pf.LogFormat
	if perr != nil {
		return perr
	}
	grace := pf.ShutdownGrace

	ctx, log, stop, err := pf.Start("kompetensnav-gateway")
	if err != nil {
		return err
	}
	defer stop()

	cfg := gateway.Config{Addrs: map[string]string{}, Logger: log, RequestTimeout: *timeout}
	for name, a := range addrs {
		cfg.Addrs[name] = *a
	}
	gf.Apply(&cfg)
	if cfg.Backends, err = tlsx.Client(*backendCA); err != nil {
		return err
	}
	gw, err := gateway.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer gw.Close()

	// Listen first, so a taken port fails here and the address printed is
	// the real one (also with port 0).
	lis, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	srv := gateway.NewHTTPServer(*httpAddr, gw.Handler())
	if *logFormat != "json" {
		fmt.Printf("gateway listening on http://%s (API reference at /docs)\n", lis.Addr())
	}
	log.Info("gateway started", "http", lis.Addr().String(), "backends", cfg.Addrs)

	errc := make(chan error, 1)
	go func() { errc <- gf.Serve(srv, lis) }()
	select {
	case err := <-errc:
		return err
	case <-process.Draining(ctx):
		// -drain-delay: /readyz says 503 while everything else is served.
		log.Info("draining: /readyz answers 503, requests are still served")
		gw.Drain()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", *grace)
	gw.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Grace ran out: cut the connections still open.
		_ = srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("gateway stopped")
	return nil
}
