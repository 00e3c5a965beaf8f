// Package app wires the all-in-one process: every service on one gRPC
// server, the REST gateway in front of it (reaching the services over gRPC
// like it does in a cluster), and Redis or the embedded store behind them.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/demo"
	"github.com/kompetensnav/kompetensnav/gateway"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
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
}

// App is a running all-in-one.
type App struct {
	// HTTPAddr and GRPCAddr are where it listens (resolved, so ":0" works).
	HTTPAddr, GRPCAddr string
	// Embedded is true when data lives in the embedded in-process store.
	Embedded bool
	// RedisAddr is the embedded store's address (empty with a Redis given).
	RedisAddr string

	log      *slog.Logger
	grpcSrv  *server.Server
	httpSrv  *http.Server
	gw       *gateway.Gateway
	rdb      redis.UniversalClient
	embedded *redisx.Embedded
	bg       *events.Background
	peers    []*peer.Conn
	errc     chan error
}

// Start brings everything up and returns once both ports accept calls. If
// any part fails, what was started is stopped again and the error returned.
func Start(ctx context.Context, cfg Config) (*App, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	a := &App{log: log, errc: make(chan error, 2)}
	if err := a.start(ctx, cfg); err != nil {
		a.Stop(time.Second)
		return nil, err
	}
	return a, nil
}

func (a *App) start(ctx context.Context, cfg Config) (err error) {
	log := a.log

	opts := cfg.Redis
	if opts == nil {
		opts = &redis.UniversalOptions{}
	}
	if len(opts.Addrs) == 0 {
		if a.embedded, err = redisx.StartEmbedded(); err != nil {
			return err
		}
		a.Embedded = true
		a.RedisAddr = a.embedded.Addr()
		copied := *opts
		copied.Addrs = []string{a.embedded.Addr()}
		opts = &copied
	}
	if a.rdb, err = redisx.Connect(ctx, opts); err != nil {
		return err
	}

	tokens := listing.NewTokens(cfg.PageTokenKey)
	if a.grpcSrv, err = server.New(log); err != nil {
		return err
	}
	// Listen before the services are built: the address is where their
	// peers are (a.peer).
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("gRPC address: %w", err)
	}
	a.GRPCAddr = grpcLis.Addr().String()
	serving := false
	defer func() {
		if !serving {
			_ = grpcLis.Close()
		}
	}()

	// Every service of the platform; adding one is one line here and one
	// in gateway.Services. A service that calls another gets a connection
	// from a.peer.
	councilsSvc, err := councils.New(councils.Options{Redis: a.rdb, Logger: log, Tokens: tokens,
		DefaultMunicipalities: cfg.DefaultMunicipalities})
	if err != nil {
		return err
	}
	if err := councilsSvc.Migrate(ctx); err != nil {
		return err
	}
	councilsSvc.Register(a.grpcSrv.GRPC)
	// Event consumers and stream trimmers run beside the servers until Stop.
	a.bg = events.Start(context.WithoutCancel(ctx), log, councilsSvc.Background()...)

	serving = true
	go func() { a.errc <- a.grpcSrv.Serve(grpcLis) }()

	addrs := map[string]string{}
	for _, s := range gateway.Services {
		addrs[s.Name] = a.GRPCAddr
	}
	if a.gw, err = gateway.New(ctx, gateway.Config{Addrs: addrs, Logger: log}); err != nil {
		return err
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP address: %w", err)
	}
	a.HTTPAddr = httpLis.Addr().String()
	a.httpSrv = gateway.NewHTTPServer(a.HTTPAddr, a.gw.Handler())
	go func() {
		if err := a.httpSrv.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			a.errc <- err
		}
	}()

	if cfg.Demo {
		conn, err := grpc.NewClient(a.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := demo.Load(ctx, conn); err != nil {
			return fmt.Errorf("loading demo data: %w", err)
		}
		log.Info("demo data loaded")
	}
	return nil
}

// peer connects a service to another one. In the all-in-one every peer is
// this process's own gRPC server, reached over loopback as in a cluster, so
// deadlines, retries, credentials and errors behave the same; the
// connections close with the App.
func (a *App) peer(service string) (*peer.Conn, error) {
	c, err := peer.Dial(service, a.GRPCAddr, peer.WithLogger(a.log))
	if err != nil {
		return nil, err
	}
	a.peers = append(a.peers, c)
	return c, nil
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
	a.bg.Stop()
	a.close()
}

func (a *App) close() {
	if a.gw != nil {
		_ = a.gw.Close()
	}
	for _, c := range a.peers {
		_ = c.Close()
	}
	if a.rdb != nil {
		_ = a.rdb.Close()
	}
	if a.embedded != nil {
		a.embedded.Close()
	}
}
