// Package server is the gRPC server every service runs in: OpenTelemetry
// stats handler, request logging with trace ids, panic recovery, proto
// validation, health (per registered service) and reflection, and a graceful
// shutdown that drains in-flight calls.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// RequestIDHeader is the metadata key (and HTTP header) that carries a
// caller's request id through the gateway into every log line of the call.
const RequestIDHeader = "x-request-id"

// Server is a gRPC server with the platform's interceptors, health and
// reflection. Register services on GRPC before calling Serve.
type Server struct {
	GRPC     *grpc.Server
	health   *healthServer
	log      *slog.Logger
	stopOnce sync.Once
}

// New builds the server. extra options are appended (tests use it for
// additional interceptors); WithGuard and Reflection are among them.
func New(log *slog.Logger, extra ...grpc.ServerOption) (*Server, error) {
	o := splitOptions(extra)
	validator, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithFieldsFromContext(requestIDFields),
	}
	unary := []grpc.UnaryServerInterceptor{
		logging.UnaryServerInterceptor(slogAdapter(log), logOpts...),
		recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(recoverer(log))),
		// Before the guard, which reads the request's resource names: a
		// request that did not decode has none to read.
		decodeUnary,
	}
	stream := []grpc.StreamServerInterceptor{
		logging.StreamServerInterceptor(slogAdapter(log), logOpts...),
		recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(recoverer(log))),
		hygieneStream,
	}
	if o.guard != nil {
		unary = append(unary, o.guard.Unary())
		stream = append(stream, o.guard.Stream())
	}
	opts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		// Limits that keep one client from holding the server: a request
		// must fit (MaxRecvMsgSize, raised or lowered with a later option),
		// a connection must finish its handshake quickly, may not ping more
		// often than every 10 s (else it is dropped), and an idle one is
		// closed after 15 minutes.
		grpc.MaxRecvMsgSize(DefaultMaxRecvBytes),
		grpc.ConnectionTimeout(10 * time.Second),
		grpc.MaxConcurrentStreams(1000),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// A connection is also retired after MaxConnectionAge (calls in
		// flight get MaxConnectionAgeGrace), so clients re-resolve and
		// spread over replicas added since they connected.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: time.Minute, Timeout: 20 * time.Second,
			MaxConnectionAge: 5 * time.Minute, MaxConnectionAgeGrace: time.Minute}),
		grpc.ChainUnaryInterceptor(append(unary, validateUnary(validator, log))...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.ForceServerCodecV2(requestCodec{}),
	}
	s := &Server{
		GRPC:   grpc.NewServer(append(opts, o.grpc...)...),
		health: &healthServer{Server: health.NewServer(), stopping: make(chan struct{})},
		log:    log,
	}
	healthpb.RegisterHealthServer(s.GRPC, s.health)
	if o.reflection {
		reflection.Register(s.GRPC)
	}
	return s, nil
}

// Serve marks every registered service SERVING and serves lis until
// Shutdown. It returns nil after a shutdown.
func (s *Server) Serve(lis net.Listener) error {
	for name := range s.GRPC.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	err := s.GRPC.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// NotServing marks every service NOT_SERVING (so load balancers and the
// gateway's readiness stop sending) and ends health Watch streams, while
// calls go on being served: the start of a drain. Shutdown does it too;
// calling it again is harmless.
func (s *Server) NotServing() {
	s.stopOnce.Do(func() {
		s.health.Shutdown()
		close(s.health.stopping)
	})
}

// Shutdown marks every service NOT_SERVING, ends health Watch streams,
// waits for in-flight calls to finish and stops. If ctx ends first, the
// remaining calls are cancelled. Calling it again is harmless.
func (s *Server) Shutdown(ctx context.Context) {
	s.NotServing()
	done := make(chan struct{})
	go func() {
		s.GRPC.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("shutdown deadline passed; cancelling calls still in flight")
		s.GRPC.Stop()
		<-done
	}
}

// Run serves lis until ctx is done, then shuts down and runs the cleanups
// (stopping consumers, closing Redis) in order, and returns within grace of
// ctx ending whatever they do: cleanups still running then (a Redis that
// hangs) are abandoned, since the process is about to exit.
//
// When the process drains first (process.Draining(ctx) closes before ctx
// ends: -drain-delay), the server reports NOT_SERVING from that moment and
// goes on serving until ctx ends.
func (s *Server) Run(ctx context.Context, lis net.Listener, grace time.Duration, cleanups ...func()) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(lis) }()
	var err error
	select {
	case err = <-errc:
	case <-process.Draining(ctx):
		s.log.Info("draining: health reports NOT_SERVING, calls are still served")
		s.NotServing()
		select {
		case err = <-errc:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	deadline := time.Now().Add(grace)
	if ctx.Err() != nil {
		sctx, cancel := context.WithDeadline(context.Background(), deadline)
		s.Shutdown(sctx)
		cancel()
		err = <-errc
	}
	RunCleanups(s.log, deadline, cleanups...)
	return err
}

// RunCleanups runs cleanups in order in the background and waits for them
// until deadline at most, logging the ones abandoned.
func RunCleanups(log *slog.Logger, deadline time.Time, cleanups ...func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, c := range cleanups {
			c()
		}
	}()
	t := time.NewTimer(max(time.Until(deadline), 0))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		log.Warn("shutdown grace over: exiting without waiting for the rest of the cleanup (Redis or consumers not answering)")
	}
}

// healthServer is grpc's health server whose Watch streams end when the
// server shuts down, right after telling the watcher NOT_SERVING. grpc's
// own keeps them open, and GracefulStop waits for every open stream: one
// client watching health (client-side health checking, a proxy) would hold
// a shutdown until its deadline, and the calls still in flight then would
// be cancelled instead of drained.
type healthServer struct {
	*health.Server
	stopping chan struct{} // closed by Shutdown once every status is NOT_SERVING
}

func (h *healthServer) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	w := &watchStream{Health_WatchServer: stream, ctx: ctx, notServing: make(chan struct{})}
	go func() {
		select {
		case <-h.stopping:
		case <-ctx.Done():
			return
		}
		// Shutdown has just queued NOT_SERVING for this watcher: let it go
		// out before ending the stream (unless the client does not read).
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-w.notServing:
		case <-t.C:
		case <-ctx.Done():
		}
		cancel()
	}()
	err := h.Server.Watch(req, w)
	select {
	case <-h.stopping:
		return status.Error(codes.Unavailable, "server is shutting down")
	default:
		return err
	}
}

type watchStream struct {
	healthpb.Health_WatchServer
	ctx        context.Context
	once       sync.Once
	notServing chan struct{} // closed once a status other than SERVING was sent
}

func (w *watchStream) Context() context.Context { return w.ctx }

func (w *watchStream) Send(r *healthpb.HealthCheckResponse) error {
	err := w.Health_WatchServer.Send(r)
	if err == nil && r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		w.once.Do(func() { close(w.notServing) })
	}
	return err
}

func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

func requestIDFields(ctx context.Context) logging.Fields {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(RequestIDHeader); len(v) > 0 {
			return logging.Fields{"request_id", v[0]}
		}
	}
	return nil
}

func recoverer(log *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		// The stack goes to the log only; the caller learns nothing of the inside.
		log.ErrorContext(ctx, "panic in handler", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	}
}

// validateUnary checks every request against the text rules of the schema
// (checkText) and its protovalidate rules, all reported together in one
// BadRequest. (That it decoded at all, decodeUnary checks first.)
// go-grpc-middleware's protovalidate interceptor reports violations as a
// buf.validate.Violations detail; the API promises google.rpc.BadRequest
// (what the gateway and every AIP client understand), hence this one.
func validateUnary(v protovalidate.Validator, log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if m, ok := req.(proto.Message); ok {
			var vs apierr.Violations
			checkText(&vs, m)
			if err := v.Validate(m); err != nil {
				if other := vs.AddValidation(err, ""); other != nil {
					// A rule that does not compile is our bug, not the caller's.
					log.ErrorContext(ctx, "validation rules failed", "method", info.FullMethod, "error", other)
					return nil, status.Error(codes.Internal, "internal error")
				}
			}
			if err := vs.Err(); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}
