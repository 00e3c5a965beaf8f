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
	"time"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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
	GRPC   *grpc.Server
	health *health.Server
	log    *slog.Logger
}

// New builds the server. extra options are appended (tests use it for
// additional interceptors).
func New(log *slog.Logger, extra ...grpc.ServerOption) (*Server, error) {
	validator, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithFieldsFromContext(requestIDFields),
	}
	opts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(
			logging.UnaryServerInterceptor(slogAdapter(log), logOpts...),
			recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(recoverer(log))),
			validateUnary(validator),
		),
		grpc.ChainStreamInterceptor(
			logging.StreamServerInterceptor(slogAdapter(log), logOpts...),
			recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(recoverer(log))),
		),
	}
	s := &Server{GRPC: grpc.NewServer(append(opts, extra...)...), health: health.NewServer(), log: log}
	healthpb.RegisterHealthServer(s.GRPC, s.health)
	reflection.Register(s.GRPC)
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

// Shutdown marks every service NOT_SERVING (so load balancers and the
// gateway's readiness stop sending), waits for in-flight calls to finish and
// stops. If ctx ends first, the remaining calls are cancelled.
func (s *Server) Shutdown(ctx context.Context) {
	s.health.Shutdown()
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

// Run serves lis until ctx is done, then shuts down within grace and runs
// the cleanups (closing Redis, flushing traces) in order.
func (s *Server) Run(ctx context.Context, lis net.Listener, grace time.Duration, cleanups ...func()) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(lis) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		s.Shutdown(sctx)
		cancel()
		err = <-errc
	}
	for _, c := range cleanups {
		c()
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

// validateUnary checks every request against its protovalidate rules.
// go-grpc-middleware's protovalidate interceptor reports violations as a
// buf.validate.Violations detail; the API promises google.rpc.BadRequest
// (what the gateway and every AIP client understand), hence this one.
func validateUnary(v protovalidate.Validator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if m, ok := req.(proto.Message); ok {
			if err := v.Validate(m); err != nil {
				var vs apierr.Violations
				if other := vs.AddValidation(err, ""); other != nil {
					return nil, status.Errorf(codes.Internal, "validation rules failed: %v", other)
				}
				return nil, vs.Err()
			}
		}
		return handler(ctx, req)
	}
}
