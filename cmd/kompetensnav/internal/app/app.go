// Package app wires the all-in-one process: every service on one gRPC
// server, the REST gateway in front of it (reaching the services over gRPC
// like it does in a cluster), and Redis or the embedded store behind them.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/demo"
	"github.com/kompetensnav/kompetensnav/gateway"
	"github.com/kompetensnav/kompetensnav/services/access"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Config is what the all-in-one needs.
type Config struct {
	HTTPAddr string
	GRPCAddr string
	// Redis is where data lives; no addresses means the embedded store.
	Redis                 *redis.UniversalOptions
	Demo                  bool
	PageTokenKey          string
	DefaultMunicipalities []string
	Logger                *slog.Logger
	// BootstrapKey is a staff credential every service accepts; empty
	// generates one (App.BootstrapKey, App.GeneratedKey).
	BootstrapKey string
	// AuthCacheTTL is how long a verified API key is trusted (0: the
	// maximum, auth.MaxCacheTTL).
	AuthCacheTTL time.Duration
	// NoReflection switches gRPC server reflection off.
	NoReflection bool
}

// App is a running all-in-one.
type App struct {
	// HTTPAddr and GRPCAddr are where it listens (resolved, so ":0" works).
	HTTPAddr, GRPCAddr string
	// Embedded is true when data lives in the embedded in-process store.
	Embedded bool
	// BootstrapKey is the bootstrap key in force; GeneratedKey says it was
	// generated because none was configured.
	BootstrapKey string
	GeneratedKey bool
	// Guard enforces every service's policy; Access is the access service
	// (its CollectAudit is what the event consumer runs on audit streams).
	Guard  *auth.Guard
	Access *access.Service

	log        *slog.Logger
	grpcSrv    *server.Server
	httpSrv    *http.Server
	gw         *gateway.Gateway
	rdb        redis.UniversalClient
	embedded   *redisx.Embedded
	accessConn *grpc.ClientConn // to the access service, for verifying keys
	errc       chan error
}

// Start brings everything up and returns once both ports accept calls.
func Start(ctx context.Context, cfg Config) (a *App, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	started := &App{log: log, errc: make(chan error, 2)}
	a = started
	defer func() {
		if err != nil {
			started.Stop(time.Second) // a is nil by now
		}
	}()

	opts := cfg.Redis
	if opts == nil {
		opts = &redis.UniversalOptions{}
	}
	if len(opts.Addrs) == 0 {
		if a.embedded, err = redisx.StartEmbedded(); err != nil {
			return nil, err
		}
		a.Embedded = true
		copied := *opts
		copied.Addrs = []string{a.embedded.Addr()}
		opts = &copied
	}
	if a.rdb, err = redisx.Connect(ctx, opts); err != nil {
		return nil, err
	}

	tokens := listing.NewTokens(cfg.PageTokenKey)
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("gRPC address: %w", err)
	}
	a.GRPCAddr = grpcLis.Addr().String()
	serving := false
	defer func() {
		if !serving {
			_ = grpcLis.Close()
		}
	}()

	a.BootstrapKey = cfg.BootstrapKey
	if a.BootstrapKey == "" {
		a.BootstrapKey, a.GeneratedKey = rand.Text()+rand.Text(), true
	}
	boot, err := auth.Bootstrap(a.BootstrapKey)
	if err != nil {
		return nil, err
	}
	if a.Access, err = access.New(access.Options{Redis: a.rdb, Logger: log, Tokens: tokens}); err != nil {
		return nil, err
	}
	// Services verify API keys through the access service over gRPC, as
	// they do in a cluster (here it is the same server); the access service
	// checks its own callers against its store.
	if a.accessConn, err = auth.DialAccess(a.GRPCAddr); err != nil {
		return nil, err
	}
	keys, err := auth.NewKeyVerifier(a.accessConn, cfg.AuthCacheTTL)
	if err != nil {
		return nil, err
	}
	a.Guard = auth.NewGuard(auth.Chain(boot, keys), log)
	if a.grpcSrv, err = server.New(log, server.WithGuard(a.Guard), server.Reflection(!cfg.NoReflection)); err != nil {
		return nil, err
	}
	// Every service of the platform; adding one is its lines here (the
	// service, its policy) and one in gateway.Services.
	councilsSvc, err := councils.New(councils.Options{Redis: a.rdb, Logger: log, Tokens: tokens,
		DefaultMunicipalities: cfg.DefaultMunicipalities})
	if err != nil {
		return nil, err
	}
	councilsSvc.Register(a.grpcSrv.GRPC)
	a.Guard.Protect(councils.Policy, a.rdb)
	a.Access.Register(a.grpcSrv.GRPC)
	a.Guard.Protect(access.Policy, a.rdb, auth.AuthenticateWith(auth.Chain(boot, a.Access.Authenticator())))
	if err := a.Guard.Covers(a.grpcSrv.GRPC.GetServiceInfo()); err != nil {
		return nil, err
	}
	serving = true
	go func() { a.errc <- a.grpcSrv.Serve(grpcLis) }()

	addrs := map[string]string{}
	for _, s := range gateway.Services {
		addrs[s.Name] = a.GRPCAddr
	}
	if a.gw, err = gateway.New(ctx, gateway.Config{Addrs: addrs, Logger: log}); err != nil {
		return nil, err
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("HTTP address: %w", err)
	}
	a.HTTPAddr = httpLis.Addr().String()
	a.httpSrv = gateway.NewHTTPServer(a.HTTPAddr, a.gw.Handler())
	go func() {
		if err := a.httpSrv.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			a.errc <- err
		}
	}()

	if cfg.Demo {
		conn, err := grpc.NewClient(a.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(auth.Bearer(a.BootstrapKey)))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		if err := demo.Load(ctx, conn); err != nil {
			return nil, fmt.Errorf("loading demo data: %w", err)
		}
		log.Info("demo data loaded")
	}
	return a, nil
}

// Wait blocks until ctx ends or a server fails, then shuts down: HTTP
// first (no new calls), then gRPC draining its calls in flight within
// grace, then Redis.
func (a *App) Wait(ctx context.Context, grace time.Duration) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-a.errc:
	}
	a.Stop(grace)
	return err
}

// Stop shuts everything down gracefully within grace.
func (a *App) Stop(grace time.Duration) {
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if a.httpSrv != nil {
		if err := a.httpSrv.Shutdown(sctx); err != nil {
			a.log.Warn("HTTP shutdown", "error", err)
		}
	}
	if a.grpcSrv != nil {
		a.grpcSrv.Shutdown(sctx)
	}
	a.close()
}

// ServiceInfo is every gRPC service the process serves, with its methods.
func (a *App) ServiceInfo() map[string]grpc.ServiceInfo { return a.grpcSrv.GRPC.GetServiceInfo() }

func (a *App) close() {
	if a.gw != nil {
		_ = a.gw.Close()
	}
	if a.accessConn != nil {
		_ = a.accessConn.Close()
	}
	if a.rdb != nil {
		_ = a.rdb.Close()
	}
	if a.embedded != nil {
		a.embedded.Close()
	}
}
