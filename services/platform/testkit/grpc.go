package testkit

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// ServeOption adjusts Serve.
type ServeOption func(*serveConfig)

type serveConfig struct {
	rdb      redis.UniversalClient
	policies []*auth.Policy
	authn    auth.Authenticator
	server   []grpc.ServerOption
}

// Guarded serves behind the platform's guard enforcing policies, with
// refusals recorded on rdb. It authenticates test tokens (see As) and the
// connection Serve returns calls as staff unless a call's context says
// otherwise, so a service's own tests run through the same authorisation
// as production without saying so on every call.
func Guarded(rdb redis.UniversalClient, policies ...*auth.Policy) ServeOption {
	return func(c *serveConfig) { c.rdb, c.policies = rdb, append(c.policies, policies...) }
}

// Authenticate makes a Guarded server accept what a accepts besides test
// tokens (real API keys, the bootstrap key).
func Authenticate(a auth.Authenticator) ServeOption {
	return func(c *serveConfig) { c.authn = a }
}

// ServerOptions are passed to server.New.
func ServerOptions(opts ...grpc.ServerOption) ServeOption {
	return func(c *serveConfig) { c.server = append(c.server, opts...) }
}

// Serve runs a platform server with what register registers on a loopback
// port, and returns a client connection to it over real TCP. Both end with t.
func Serve(t testing.TB, register func(*grpc.Server), opts ...ServeOption) *grpc.ClientConn {
	t.Helper()
	var cfg serveConfig
	for _, o := range opts {
		o(&cfg)
	}
	serverOpts := cfg.server
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	var guard *auth.Guard
	if cfg.policies != nil {
		guard = auth.NewGuard(auth.Chain(testTokens, cfg.authn), Logger())
		for _, p := range cfg.policies {
			guard.Protect(p, cfg.rdb)
		}
		serverOpts = append(serverOpts, server.WithGuard(guard))
		dialOpts = append(dialOpts, grpc.WithUnaryInterceptor(staffByDefault), grpc.WithStreamInterceptor(staffByDefaultStream))
	}
	srv, err := server.New(Logger(), serverOpts...)
	if err != nil {
		t.Fatal(err)
	}
	register(srv.GRPC)
	if guard != nil {
		if err := guard.Covers(srv.GRPC.GetServiceInfo()); err != nil {
			t.Fatal(err)
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), dialOpts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return conn
}

// Test tokens are "test.<ROLE_NAME>[.<subject>]"; only Guarded servers
// (test code) accept them.
const testTokenPrefix = "test."

var testTokens = auth.AuthenticatorFunc(func(_ context.Context, token string) (*auth.Principal, error) {
	rest, ok := strings.CutPrefix(token, testTokenPrefix)
	if !ok {
		return nil, auth.ErrNotMine
	}
	role, subject, _ := strings.Cut(rest, ".")
	r, ok := accessv1.Role_value[role]
	if !ok {
		return nil, auth.ErrNotMine
	}
	return &auth.Principal{Id: "test/" + strings.ToLower(strings.TrimPrefix(role, "ROLE_")), Role: accessv1.Role(r), Subject: subject}, nil
})

// Token is the test token of a principal with role, bound to subject.
func Token(role auth.Role, subject string) string {
	t := testTokenPrefix + role.String()
	if subject != "" {
		t += "." + subject
	}
	return t
}

// As makes the calls made with ctx authenticate with token ("" for none)
// instead of as staff.
func As(ctx context.Context, token string) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	md.Delete(auth.AuthorizationHeader)
	if token != "" {
		md.Set(auth.AuthorizationHeader, "Bearer "+token)
	}
	return metadata.NewOutgoingContext(context.WithValue(ctx, chosenKey{}, true), md)
}

// AsRole is As with a test token for role bound to subject.
func AsRole(ctx context.Context, role auth.Role, subject string) context.Context {
	return As(ctx, Token(role, subject))
}

type chosenKey struct{}

func withStaff(ctx context.Context) context.Context {
	if ctx.Value(chosenKey{}) != nil {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, auth.AuthorizationHeader, "Bearer "+Token(auth.Staff, ""))
}

func staffByDefault(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return invoker(withStaff(ctx), method, req, reply, cc, opts...)
}

func staffByDefaultStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return streamer(withStaff(ctx), desc, cc, method, opts...)
}
