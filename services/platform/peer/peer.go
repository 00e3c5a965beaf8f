// Package peer is how one service calls another, written once so that every
// such call behaves the same:
//
//   - the address comes from -<service>-addr (env KN_<SERVICE>_ADDR),
//     defined by AddrFlag; in the all-in-one every peer is the process's own
//     gRPC server;
//   - calls are traced (the otelgrpc client handler), get a deadline of
//     their own (DefaultTimeout) when the caller's context has none, and are
//     retried by gRPC on UNAVAILABLE (the channel's service config, below);
//   - the incoming call's x-request-id and authorization go along, so the
//     peer logs the same request id and authorises the original caller.
//     Where there is no incoming call (an event consumer), WithCredential
//     supplies the service's own token instead;
//   - Err turns a failed call into the error the calling service returns to
//     its own caller, never leaking the peer's internals.
//
// A binary defines the address flag:
//
//	councilsAddr := peer.AddrFlag(fs, "councils") // -councils-addr, KN_COUNCILS_ADDR
//
// and a service checks a reference before it writes anything:
//
//	councils, err := peer.Dial("councils", *councilsAddr, peer.WithLogger(log))
//	client := councilsv1.NewCouncilsServiceClient(councils)
//	…
//	if _, err := client.GetSectorCouncil(ctx, &councilsv1.GetSectorCouncilRequest{Name: c.GetCouncil()}); err != nil {
//		return nil, councils.Err(ctx, err, peer.On(codes.NotFound,
//			apierr.Field("company.council", "%s does not exist", c.GetCouncil())))
//	}
package peer

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// DefaultAddr is where a peer is looked for when its flag is not set: the
// gRPC address every service and the all-in-one listen on by default.
const DefaultAddr = "127.0.0.1:9090"

// DefaultTimeout bounds a call whose context has no deadline of its own.
const DefaultTimeout = 5 * time.Second

// AuthorizationHeader is the metadata key of the caller's credentials
// ("Bearer …").
const AuthorizationHeader = "authorization"

// retryPolicy is the channel's gRPC service config: every method of every
// service on it is retried on UNAVAILABLE (the peer down, restarting or
// overloaded; gRPC only returns it when the call can safely be repeated),
// up to 4 attempts with jittered exponential backoff from 0.1 s to 1 s, all
// within the call's one deadline. gRPC itself does the retrying, so it also
// covers calls refused before they reached a server.
//
// Calls are spread over every address the name resolves to (round_robin):
// with a headless Kubernetes Service that is every replica of the service,
// where the default (pick_first) would pin a client to one pod.
const retryPolicy = `{"loadBalancingConfig": [{"round_robin": {}}], "methodConfig": [{
  "name": [{}],
  "retryPolicy": {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"]
  }
}]}`

// FlagName is the flag holding a service's address: "councils" →
// "councils-addr" (environment KN_COUNCILS_ADDR).
func FlagName(service string) string { return service + "-addr" }

// AddrFlag defines -<service>-addr (env KN_<SERVICE>_ADDR, default
// DefaultAddr) on fs, for a binary that calls service.
func AddrFlag(fs *flag.FlagSet, service string) *string {
	return config.String(fs, FlagName(service), DefaultAddr, "host:port of the "+service+" service's gRPC server")
}

// Option configures Dial.
type Option func(*Conn)

// WithTimeout sets the deadline of a call whose context has none
// (default DefaultTimeout). Streams get none: they live as long as their
// context.
func WithTimeout(d time.Duration) Option { return func(c *Conn) { c.timeout = d } }

// WithCredential gives the bearer token a call carries when it is made
// outside any incoming call (an event consumer, a sweeper): the service's
// own identity. Inside an incoming call the caller's authorization is
// passed on instead, or none if the caller sent none: a service never
// lends its own identity to an anonymous caller.
func WithCredential(token func(context.Context) (string, error)) Option {
	return func(c *Conn) { c.credential = token }
}

// WithLogger sets where Err reports failures (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *Conn) { c.log = l } }

// WithTransport sets how the connection is secured (default plaintext, as
// inside a cluster whose mesh encrypts; tlsx.Client for TLS).
func WithTransport(creds credentials.TransportCredentials) Option {
	return func(c *Conn) { c.transport = creds }
}

// Conn is a connection to one peer service. It is a grpc.ClientConnInterface,
// so a generated client takes it: councilsv1.NewCouncilsServiceClient(conn).
// Close it when done.
type Conn struct {
	*grpc.ClientConn
	service    string
	timeout    time.Duration
	credential func(context.Context) (string, error)
	log        *slog.Logger
	transport  credentials.TransportCredentials
}

// Dial prepares a connection to service at addr (host:port). It does not
// wait for the peer: gRPC connects on the first call and reconnects as
// needed, so a service starts while its peers are still starting.
func Dial(service, addr string, opts ...Option) (*Conn, error) {
	if addr == "" {
		return nil, fmt.Errorf("peer: no address for the %s service: set -%s", service, FlagName(service))
	}
	c := &Conn{service: service, timeout: DefaultTimeout, log: slog.Default(), transport: insecure.NewCredentials()}
	for _, o := range opts {
		o(c)
	}
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(c.transport),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithDefaultServiceConfig(retryPolicy),
		// Only our retry policy applies, never one a resolver hands out.
		grpc.WithDisableServiceConfig(),
		grpc.WithChainUnaryInterceptor(c.unary),
		grpc.WithChainStreamInterceptor(c.stream),
	)
	if err != nil {
		return nil, fmt.Errorf("peer: the %s service at %q: %w", service, addr, err)
	}
	c.ClientConn = cc
	return c, nil
}

// Service is the name of the peer service, as given to Dial.
func (c *Conn) Service() string { return c.service }

func (c *Conn) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, err := c.outgoing(ctx)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (c *Conn) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	ctx, err := c.outgoing(ctx)
	if err != nil {
		return nil, err
	}
	return streamer(ctx, desc, cc, method, opts...)
}

// outgoing adds to ctx's outgoing metadata the request id and credentials
// of the incoming call (or the service's own, outside any call), unless the
// caller set them already.
func (c *Conn) outgoing(ctx context.Context) (context.Context, error) {
	out, _ := metadata.FromOutgoingContext(ctx)
	in, incoming := metadata.FromIncomingContext(ctx)
	var kv []string
	for _, k := range []string{server.RequestIDHeader, AuthorizationHeader} {
		if v := in.Get(k); len(v) > 0 && len(out.Get(k)) == 0 {
			kv = append(kv, k, v[0])
		}
	}
	if !incoming && c.credential != nil && len(out.Get(AuthorizationHeader)) == 0 {
		token, err := c.credential(ctx)
		if err != nil {
			return ctx, status.Errorf(codes.Internal, "no credential for calling the %s service: %v", c.service, err)
		}
		kv = append(kv, AuthorizationHeader, "Bearer "+token)
	}
	if len(kv) == 0 {
		return ctx, nil
	}
	return metadata.AppendToOutgoingContext(ctx, kv...), nil
}

// Mapping is the caller's own error for one status code of the peer.
type Mapping struct {
	code codes.Code
	err  error
}

// On makes Err return err when the peer answers code. The usual one: a
// referenced resource the peer does not have is the caller's bad field,
//
//	peer.On(codes.NotFound, apierr.Field("company.council", "%s does not exist", name))
func On(code codes.Code, err error) Mapping { return Mapping{code: code, err: err} }

// Err turns err, the failure of a call to this peer made while serving ctx,
// into the error the calling service returns. nil stays nil. In order:
//
//   - ctx itself ended (the caller cancelled, or its own deadline passed):
//     CANCELLED or DEADLINE_EXCEEDED, as for any call;
//   - a code given with On: that error;
//   - UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, RESOURCE_EXHAUSTED,
//     ABORTED (the peer down, slow or overloaded; gRPC has already retried
//     what it safely could), and INTERNAL or UNKNOWN while the connection
//     to the peer is in TRANSIENT_FAILURE (no peer answered): UNAVAILABLE,
//     "the councils service is unavailable; nothing was written; retry
//     later". Call Err for calls
//     made before the calling service writes anything, as that message
//     promises;
//   - NOT_FOUND, FAILED_PRECONDITION, ALREADY_EXISTS, OUT_OF_RANGE,
//     PERMISSION_DENIED, UNAUTHENTICATED (answers about the caller's
//     request): the same code with the peer's message, without its details
//     (their field paths are the peer's request's, not the caller's);
//   - anything else (INVALID_ARGUMENT, UNIMPLEMENTED, INTERNAL, … : a
//     request this service should not have sent, or a fault in the peer):
//     INTERNAL, "internal error calling the councils service".
//
// The peer's own error is logged, never returned.
func (c *Conn) Err(ctx context.Context, err error, mapped ...Mapping) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	st := status.Convert(err)
	for _, m := range mapped {
		if m.code == st.Code() {
			return m.err
		}
	}
	code := st.Code()
	if (code == codes.Unknown || code == codes.Internal) && c.ClientConn != nil && c.GetState() == connectivity.TransientFailure {
		// gRPC says UNAVAILABLE for a peer it cannot connect to, but a
		// failure on the client's side of a call that never reached the
		// peer can surface as INTERNAL or UNKNOWN: with the connection in
		// TRANSIENT_FAILURE no peer answered it, so it is the peer being
		// unreachable, not a fault of either service.
		code = codes.Unavailable
	}
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.ResourceExhausted, codes.Aborted:
		c.log.WarnContext(ctx, "peer unavailable", "peer", c.service, "code", st.Code().String(), "error", st.Message())
		return status.Errorf(codes.Unavailable, "the %s service is unavailable; nothing was written; retry later", c.service)
	case codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists, codes.OutOfRange,
		codes.PermissionDenied, codes.Unauthenticated:
		return status.Error(st.Code(), st.Message())
	default:
		c.log.ErrorContext(ctx, "peer call failed", "peer", c.service, "code", st.Code().String(), "error", st.Message())
		return status.Errorf(codes.Internal, "internal error calling the %s service", c.service)
	}
}
