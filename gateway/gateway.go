// Package gateway is the REST front of Kompetensnav: one grpc-gateway mux
// that translates JSON over HTTP into gRPC calls to each backend service,
// plus the OpenAPI document, the API reference page and health endpoints.
//
// Routes:
//
//	/v1/...        the API (grpc-gateway), and the project report as CSV
//	               (/v1/projects/{project}/report.csv, report_csv.go)
//	/openapi.json  the Swagger 2.0 document the API was generated from
//	/docs          a browsable API reference built from /openapi.json
//	/healthz       liveness: the process is up
//	/readyz        readiness: every backend reports SERVING
//
// The gateway does not authenticate: it passes the caller's Authorization
// header to the backend as "authorization" metadata, and every service
// checks it itself (partners call the services' gRPC directly, so the
// services cannot rely on a front door). Only the four routes above answer
// without credentials.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// Service is one backend the gateway fronts.
type Service struct {
	// Name is the short name used in flags (-<name>-addr), Config.Addrs and
	// readiness reports, e.g. "councils".
	Name string
	// HealthName is the name the backend registers with gRPC health
	// checking: its full gRPC service name.
	HealthName string
	// Register installs the service's REST handlers on the mux; it is the
	// generated Register<Service>Handler.
	Register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
}

// Services is every backend the gateway fronts. Adding a service is one
// line here; the binaries derive their flags from this list.
var Services = []Service{
	{Name: "councils", HealthName: councilsv1.CouncilsService_ServiceDesc.ServiceName, Register: councilsv1.RegisterCouncilsServiceHandler},
	{Name: "companies", HealthName: companiesv1.CompaniesService_ServiceDesc.ServiceName, Register: companiesv1.RegisterCompaniesServiceHandler},
	{Name: "access", HealthName: accessv1.AccessService_ServiceDesc.ServiceName, Register: accessv1.RegisterAccessServiceHandler},
	{Name: "procurement", HealthName: procurementv1.ProcurementService_ServiceDesc.ServiceName, Register: procurementv1.RegisterProcurementServiceHandler},
	{Name: "skills", HealthName: skillsv1.SkillsService_ServiceDesc.ServiceName, Register: skillsv1.RegisterSkillsServiceHandler},
	{Name: "enrolment", HealthName: enrolmentv1.EnrolmentService_ServiceDesc.ServiceName, Register: enrolmentv1.RegisterEnrolmentServiceHandler},
}

// AddrFlag is the name of the flag that holds a service's address,
// e.g. "councils-addr" (environment KN_COUNCILS_ADDR).
func AddrFlag(service string) string { return service + "-addr" }

// DefaultRequestTimeout bounds a request when Config.RequestTimeout is zero.
const DefaultRequestTimeout = 30 * time.Second

// MaxResponseBytes is the largest backend response the gateway accepts.
const MaxResponseBytes = 16 << 20

// MaxHeaderBytes bounds a request's headers; larger ones get 431.
const MaxHeaderBytes = 64 << 10

// MaxBodyBytes is the largest request body the gateway accepts. The biggest
// legitimate body (a need with 10 000 characters of rationale and a few
// hundred list items) is far below it.
const MaxBodyBytes = 1 << 20

// Config configures New.
type Config struct {
	// Addrs maps a Service.Name to its host:port. Every entry of Services
	// needs one; names not in Services are ignored.
	Addrs map[string]string
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// RequestTimeout bounds each request, backend call included
	// (default DefaultRequestTimeout).
	RequestTimeout time.Duration
	// Backends secures the connections to the services (default
	// plaintext, as inside a cluster whose mesh encrypts; tlsx.Client).
	Backends credentials.TransportCredentials
	// CORSOrigins are the browser origins allowed to call the API from
	// their pages; none by default.
	CORSOrigins []string
	// AnonymousRate is how many calls a second one IP address may make
	// without credentials (answered 401; default DefaultAnonymousRate).
	AnonymousRate int
}

// Gateway is the HTTP handler in front of the backends. Close it to release
// the backend connections.
type Gateway struct {
	mux       *runtime.ServeMux
	routes    map[string]*route
	anonymous *anonymousLimiter
	handler   http.Handler
	backends  []backend
	log       *slog.Logger
	timeout   time.Duration
	draining  atomic.Bool
}

type backend struct {
	Service
	conn *grpc.ClientConn
}

// apiJSON is the wire format: lowerCamelCase names and enum names (the
// protojson defaults), unset fields left out so responses stay small, and
// unknown request fields rejected so a misspelt field is an error rather
// than silently ignored.
var apiJSON = &runtime.JSONPb{
	MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: false, UseProtoNames: false, UseEnumNumbers: false},
	UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
}

// New connects to every backend in Services at its address in cfg.Addrs
// and builds the handler. Connections are made lazily by gRPC, so New
// succeeds while a backend is still starting; /readyz tells when all are up.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	g := &Gateway{log: cfg.Logger, timeout: cfg.RequestTimeout, anonymous: newAnonymousLimiter(cfg.AnonymousRate)}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.timeout <= 0 {
		g.timeout = DefaultRequestTimeout
	}
	names := make([]string, len(Services))
	for i, s := range Services {
		names[i] = s.HealthName
	}
	var err error
	if g.routes, err = routes(names); err != nil {
		return nil, err
	}
	g.mux = runtime.NewServeMux(
		// HTTPBodyMarshaler keeps google.api.HttpBody responses raw, should a
		// service ever return one (a CSV report, say).
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: responseJSON{apiJSON}}),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithIncomingHeaderMatcher(headerMatcher),
		runtime.WithMiddlewares(nameSpan, g.strict),
	)
	for _, s := range Services {
		addr := cfg.Addrs[s.Name]
		if addr == "" {
			_ = g.Close()
			return nil, fmt.Errorf("gateway: no address for the %s service: set -%s", s.Name, AddrFlag(s.Name))
		}
		creds := cfg.Backends
		if creds == nil {
			creds = insecure.NewCredentials()
		}
		conn, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(creds),
			grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
			// Spread calls over every replica the address resolves to (a
			// headless Kubernetes Service), not one pinned connection.
			grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`),
			// Services keep pages below 3 MiB (listing.DefaultMaxPageBytes);
			// the margin above gRPC's default 4 MiB keeps a large resource
			// from turning into an error at the gateway.
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxResponseBytes)),
		)
		if err != nil {
			_ = g.Close()
			return nil, fmt.Errorf("gateway: %s service at %q: %w", s.Name, addr, err)
		}
		g.backends = append(g.backends, backend{Service: s, conn: conn})
		if err := s.Register(ctx, g.mux, conn); err != nil {
			_ = g.Close()
			return nil, fmt.Errorf("gateway: registering the %s service: %w", s.Name, err)
		}
		if s.Name == "enrolment" {
			if err := g.mux.HandlePath(http.MethodGet, reportCSVPath, g.handleReportCSV(conn)); err != nil {
				_ = g.Close()
				return nil, fmt.Errorf("gateway: the project report's CSV: %w", err)
			}
		}
	}

	root := http.NewServeMux()
	// A browser pointed at the gateway lands on the API reference.
	root.Handle("GET /{$}", http.RedirectHandler("/docs", http.StatusFound))
	root.Handle("GET /docs/{$}", http.RedirectHandler("/docs", http.StatusMovedPermanently))
	root.HandleFunc("GET /healthz", healthz)
	root.HandleFunc("GET /readyz", g.readyz)
	root.HandleFunc("GET /openapi.json", serveOpenAPI)
	root.HandleFunc("GET /docs", serveDocs)
	root.Handle("/", g.limitBody(g.mux))

	var h http.Handler = root
	h = withTimeout(h, g.timeout)
	h = cors(cfg.CORSOrigins, h)
	h = securityHeaders(h)
	h = g.accessLog(h)
	h = withRequestID(h)
	// Outermost, so the span covers everything and its trace id is in the
	// context the access log and the backend calls see.
	g.handler = otelhttp.NewHandler(h, "gateway")
	return g, nil
}

// Handler is the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Close closes the backend connections.
func (g *Gateway) Close() error {
	var errs []error
	for _, b := range g.backends {
		errs = append(errs, b.conn.Close())
	}
	return errors.Join(errs...)
}

// NewHTTPServer is an http.Server with timeouts, so a slow or idle client
// cannot hold a connection (and its goroutine) forever. WriteTimeout is above
// the default request timeout so a slow backend gets a JSON 504 rather than a
// cut connection.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}
