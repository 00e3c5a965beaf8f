// Package app wires the all-in-one process: every service on one gRPC
// server, the REST gateway in front of it (reaching the services over gRPC
// like it does in a cluster), and Redis or the embedded store behind them.
package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/demo"
	"github.com/kompetensnav/kompetensnav/gateway"
	"github.com/kompetensnav/kompetensnav/services/access"
	"github.com/kompetensnav/kompetensnav/services/companies"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/kompetensnav/kompetensnav/services/procurement"
	"github.com/kompetensnav/kompetensnav/services/skills"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
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
	// GRPCOptions are more options of the gRPC server (server.Flags:
	// reflection, request size, TLS); they override the ones above.
	GRPCOptions []grpc.ServerOption
	// Internal secures the process's calls to its own gRPC server (the
	// gateway's, the peers', key verification); nil is plaintext, which a
	// server serving TLS refuses.
	Internal credentials.TransportCredentials
	// Gateway configures the REST gateway (CORS, the anonymous rate);
	// Start fills in the addresses, the logger and Internal.
	Gateway gateway.Config
	// HTTPTLS serves the gateway over TLS when set.
	HTTPTLS *tls.Config
	// OIDC authenticates OIDC bearer tokens (nil: none accepted).
	OIDC auth.Authenticator
	// RateLimits are calls per second per principal, by role (nil: none).
	RateLimits auth.RateLimits
	// ClientCerts authenticates partner systems by client certificate.
	ClientCerts *auth.ClientCertPrincipals
	// OCDSPrefix prefixes the ocids of procurement's OCDS export (empty:
	// procurement.DefaultOCDSPrefix).
	OCDSPrefix string
	// IssuerKey signs certificates' credentials; nil generates one for
	// the run (App.GeneratedIssuerKey).
	IssuerKey ed25519.PrivateKey
	// IssuerName is the hub's name on certificates (default
	// skills.DefaultIssuerName); IssuerURL its public address, which
	// credential ids are under (default: the REST address).
	IssuerName, IssuerURL string
	// PII are the keys of participants' personal data; nil generates keys
	// for this run (App.PIIGenerated), whose data is lost with them.
	PII *pii.Keys
}

// App is a running all-in-one.
type App struct {
	// HTTPAddr and GRPCAddr are where it listens (resolved, so ":0" works).
	HTTPAddr, GRPCAddr string
	// Embedded is true when data lives in the embedded in-process store.
	Embedded bool
	// RedisAddr is the embedded store's address (empty with a Redis given).
	RedisAddr string
	// BootstrapKey is the bootstrap key in force; GeneratedKey says it was
	// generated because none was configured.
	BootstrapKey string
	GeneratedKey bool
	// PIIGenerated says the keys of participants' personal data were made
	// for this run because none were configured.
	PIIGenerated bool
	// Guard enforces every service's policy; Access is the access service.
	Guard  *auth.Guard
	Access *access.Service
	// IssuerKeyID is the key id of the key certificates are signed with;
	// GeneratedIssuerKey says it was generated for this run.
	IssuerKeyID        string
	GeneratedIssuerKey bool

	log        *slog.Logger
	grpcSrv    *server.Server
	httpSrv    *http.Server
	gw         *gateway.Gateway
	rdb        redis.UniversalClient
	embedded   *redisx.Embedded
	bg         *events.Background
	peers      []*peer.Conn
	accessConn *grpc.ClientConn // to the access service, for verifying keys
	internal   credentials.TransportCredentials
	errc       chan error
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
	// Listen before the services are built: the address is where their
	// peers are (a.peer), the access service included.
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
	// The REST address too: certificates' credentials name it (the
	// issuer's default URL), so it must be known before the services.
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP address: %w", err)
	}
	a.HTTPAddr = httpLis.Addr().String()
	httpServing := false
	defer func() {
		if !httpServing {
			_ = httpLis.Close()
		}
	}()

	a.BootstrapKey = cfg.BootstrapKey
	if a.BootstrapKey == "" {
		a.BootstrapKey, a.GeneratedKey = rand.Text()+rand.Text(), true
	}
	boot, err := auth.Bootstrap(a.BootstrapKey)
	if err != nil {
		return err
	}
	// The access service collects every service's audit stream; here they
	// all live in the one Redis.
	if a.Access, err = access.New(access.Options{Redis: a.rdb, Logger: log, Tokens: tokens,
		AuditSources: map[string]redis.UniversalClient{"councils": a.rdb, "access": a.rdb, "companies": a.rdb, "procurement": a.rdb, "skills": a.rdb, "enrolment": a.rdb}}); err != nil {
		return err
	}
	// Services verify API keys through the access service over gRPC, as
	// they do in a cluster (here it is the same server); the access service
	// checks its own callers against its store.
	a.internal = cfg.Internal
	if a.internal == nil {
		a.internal = insecure.NewCredentials()
	}
	if a.accessConn, err = auth.DialAccess(a.GRPCAddr, a.internal); err != nil {
		return err
	}
	keys, err := auth.NewKeyVerifier(a.accessConn, cfg.AuthCacheTTL)
	if err != nil {
		return err
	}
	a.Guard = auth.NewGuard(auth.Chain(boot, cfg.OIDC, keys), log)
	a.Guard.LimitRate(auth.NewRateLimiter(cfg.RateLimits))
	if cfg.ClientCerts != nil {
		a.Guard.AcceptClientCertificates(cfg.ClientCerts)
	}
	grpcOpts := append([]grpc.ServerOption{server.WithGuard(a.Guard), server.Reflection(!cfg.NoReflection)}, cfg.GRPCOptions...)
	if a.grpcSrv, err = server.New(log, grpcOpts...); err != nil {
		return err
	}

	// Every service of the platform; adding one is its lines here (the
	// service, its policy, its background work) and one in
	// gateway.Services. A service that calls another gets a connection from
	// a.peer.
	councilsSvc, err := councils.New(councils.Options{Redis: a.rdb, Logger: log, Tokens: tokens,
		DefaultMunicipalities: cfg.DefaultMunicipalities})
	if err != nil {
		return err
	}
	if err := councilsSvc.Migrate(ctx); err != nil {
		return err
	}
	councilsSvc.Register(a.grpcSrv.GRPC)
	a.Guard.Protect(councils.Policy, a.rdb)
	councilsPeer, err := a.peer("councils")
	if err != nil {
		return err
	}
	companiesSvc, err := companies.New(companies.Options{Redis: a.rdb, Logger: log, Tokens: tokens, Councils: councilsPeer})
	if err != nil {
		return err
	}
	if err := companiesSvc.Migrate(ctx); err != nil {
		return err
	}
	companiesSvc.Register(a.grpcSrv.GRPC)
	a.Guard.Protect(companies.Policy, a.rdb)
	skillsPeer, err := a.peer("skills")
	if err != nil {
		return err
	}
	procurementSvc, err := procurement.New(procurement.Options{Redis: a.rdb, Logger: log, Tokens: tokens,
		Councils: councilsPeer, Skills: skillsPeer, OCDSPrefix: cfg.OCDSPrefix})
	if err != nil {
		return err
	}
	if err := procurementSvc.Migrate(ctx); err != nil {
		return err
	}
	procurementSvc.Register(a.grpcSrv.GRPC)
	a.Guard.Protect(procurement.Policy, a.rdb)
	skillsSvc, err := a.skills(cfg, tokens, councilsPeer)
	if err != nil {
		return err
	}
	if err := skillsSvc.Migrate(ctx); err != nil {
		return err
	}
	skillsSvc.Register(a.grpcSrv.GRPC)
	a.Guard.Protect(skills.Policy, a.rdb)
	piiKeys := cfg.PII
	if piiKeys == nil {
		piiKeys = pii.Generate()
	}
	a.PIIGenerated = piiKeys.Generated
	companiesForEnrolment, err := a.peer("companies")
	if err != nil {
		return err
	}
	procurementForEnrolment, err := a.peer("procurement")
	if err != nil {
		return err
	}
	enrolmentSvc, err := enrolment.New(enrolment.Options{Redis: a.rdb, Logger: log, Tokens: tokens, Keys: piiKeys,
		Companies: enrolment.CompaniesOver(companiesForEnrolment), CallOffs: enrolment.CallOffsOver(procurementForEnrolment)})
	if err != nil {
		return err
	}
	if err := enrolmentSvc.Migrate(ctx); err != nil {
		return err
	}
	enrolmentSvc.Register(a.grpcSrv.GRPC)
	a.Guard.Protect(enrolment.Policy, a.rdb)
	a.Access.Register(a.grpcSrv.GRPC)
	a.Guard.Protect(access.Policy, a.rdb, auth.AuthenticateWith(auth.Chain(boot, cfg.OIDC, a.Access.Authenticator())))
	if err := a.Guard.Covers(a.grpcSrv.GRPC.GetServiceInfo()); err != nil {
		return err
	}
	// Event consumers and stream trimmers run beside the servers until Stop.
	accessBackground, err := a.Access.Background()
	if err != nil {
		return err
	}
	background := append(councilsSvc.Background(), companiesSvc.Background()...)
	background = append(background, procurementSvc.Background()...)
	background = append(background, skillsSvc.Background()...)
	background = append(background, enrolmentSvc.Background()...)
	a.bg = events.Start(context.WithoutCancel(ctx), log, append(background, accessBackground...)...)

	serving = true
	go func() { a.errc <- a.grpcSrv.Serve(grpcLis) }()

	addrs := map[string]string{}
	for _, s := range gateway.Services {
		addrs[s.Name] = a.GRPCAddr
	}
	gwcfg := cfg.Gateway
	gwcfg.Addrs, gwcfg.Logger, gwcfg.Backends = addrs, log, a.internal
	if a.gw, err = gateway.New(ctx, gwcfg); err != nil {
		return err
	}
	a.httpSrv = gateway.NewHTTPServer(a.HTTPAddr, a.gw.Handler())
	httpServing = true
	go func() {
		if err := gateway.ServeMaybeTLS(a.httpSrv, httpLis, cfg.HTTPTLS); !errors.Is(err, http.ErrServerClosed) {
			a.errc <- err
		}
	}()

	if cfg.Demo {
		conn, err := grpc.NewClient(a.GRPCAddr, grpc.WithTransportCredentials(a.internal),
			grpc.WithPerRPCCredentials(auth.Bearer(a.BootstrapKey)))
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

// skills builds the skills service: its issuer signs with cfg.IssuerKey,
// or with a key generated for this run, and its mappings' councils and
// companies are checked with the councils and companies services (this
// process).
func (a *App) skills(cfg Config, tokens *listing.Tokens, councils *peer.Conn) (*skills.Service, error) {
	key := cfg.IssuerKey
	if key == nil {
		key, a.GeneratedIssuerKey = skills.GenerateIssuerKey(), true
	}
	name := cfg.IssuerName
	if name == "" {
		name = skills.DefaultIssuerName
	}
	issuerURL := cfg.IssuerURL
	if issuerURL == "" {
		// Where this process answers: fine on a laptop; a hub sets its
		// public address.
		host, port, err := net.SplitHostPort(a.HTTPAddr)
		if err != nil {
			return nil, fmt.Errorf("HTTP address: %w", err)
		}
		if host == "" {
			host = "localhost"
		}
		scheme := "http"
		if cfg.HTTPTLS != nil {
			scheme = "https"
		}
		issuerURL = scheme + "://" + net.JoinHostPort(host, port)
	}
	issuer, err := skills.NewIssuer(name, issuerURL, key)
	if err != nil {
		return nil, err
	}
	a.IssuerKeyID = issuer.KeyID()
	companiesPeer, err := a.peer("companies")
	if err != nil {
		return nil, err
	}
	// The enrolment service's stream (completions become certificates,
	// erasures anonymise them) is in the one Redis too.
	return skills.New(skills.Options{Redis: a.rdb, Logger: a.log, Tokens: tokens, Issuer: issuer, Councils: councils, Companies: companiesPeer,
		EnrolmentEvents: a.rdb})
}

// peer connects a service to another one. In the all-in-one every peer is
// this process's own gRPC server, reached over loopback as in a cluster, so
// deadlines, retries, credentials and errors behave the same; the
// connections close with the App.
//
// A call made on behalf of a caller carries the caller's credentials; one
// made outside any call (an event consumer's) carries the bootstrap key,
// the all-in-one's service identity.
func (a *App) peer(service string) (*peer.Conn, error) {
	key := a.BootstrapKey
	c, err := peer.Dial(service, a.GRPCAddr, peer.WithLogger(a.log), peer.WithTransport(a.internal),
		peer.WithCredential(func(context.Context) (string, error) { return key, nil }))
	if err != nil {
		return nil, err
	}
	a.peers = append(a.peers, c)
	return c, nil
}

// Wait blocks until ctx ends or a server fails, then shuts down: HTTP
// first (no new calls), then gRPC draining its calls in flight within
// grace, then Redis. When the process drains first (process.Draining,
// -drain-delay), /readyz answers 503 and gRPC health NOT_SERVING from then
// until ctx ends, while calls are still served.
func (a *App) Wait(ctx context.Context, grace time.Duration) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-a.errc:
	case <-process.Draining(ctx):
		a.Drain()
		select {
		case <-ctx.Done():
		case err = <-a.errc:
		}
	}
	a.Stop(grace)
	return err
}

// Drain reports not ready (/readyz 503, gRPC health NOT_SERVING) while
// going on serving.
func (a *App) Drain() {
	a.log.Info("draining: /readyz answers 503 and gRPC health NOT_SERVING; calls are still served")
	if a.gw != nil {
		a.gw.Drain()
	}
	if a.grpcSrv != nil {
		a.grpcSrv.NotServing()
	}
}

// Stop shuts everything down gracefully within grace, and returns by then
// whatever Redis does.
func (a *App) Stop(grace time.Duration) {
	deadline := time.Now().Add(grace)
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if a.gw != nil {
		a.gw.Drain()
	}
	if a.httpSrv != nil {
		if err := a.httpSrv.Shutdown(sctx); err != nil {
			a.log.Warn("HTTP shutdown", "error", err)
			_ = a.httpSrv.Close()
		}
	}
	if a.grpcSrv != nil {
		a.grpcSrv.Shutdown(sctx)
	}
	server.RunCleanups(a.log, deadline, a.bg.Stop, a.close)
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
