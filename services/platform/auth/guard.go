package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// RequestIDHeader is the metadata key of the caller's request id (the
// same as server.RequestIDHeader, which this package cannot import).
const RequestIDHeader = "x-request-id"

// Guard authenticates every call, authorises it against its service's
// Policy, clears sensitive response fields for roles that may not see them,
// and records refusals and sensitive reads. Install it with
// server.WithGuard(guard) and Protect every service registered.
type Guard struct {
	authn   Authenticator
	log     *slog.Logger
	limiter *RateLimiter
	mtls    *ClientCertPrincipals

	mu       sync.RWMutex
	services map[string]*protected
}

type protected struct {
	policy *Policy
	st     *store.Store
	rdb    redis.UniversalClient
	authn  Authenticator
}

// NewGuard authenticates with authn (see Chain); log receives what goes
// wrong inside the guard (an audit record that could not be written).
func NewGuard(authn Authenticator, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.Default()
	}
	return &Guard{authn: authn, log: log, services: map[string]*protected{}}
}

// LimitRate makes the guard limit each principal's calls (after
// authentication, before anything else).
func (g *Guard) LimitRate(l *RateLimiter) { g.limiter = l }

// AcceptClientCertificates lets callers without a bearer token
// authenticate with a verified TLS client certificate that m maps to a
// principal (mutual TLS for partner systems).
func (g *Guard) AcceptClientCertificates(m *ClientCertPrincipals) { g.mtls = m }

// ProtectOption adjusts Protect.
type ProtectOption func(*protected)

// AuthenticateWith authenticates this service's callers with a instead of
// the guard's authenticator: the access service checks keys in its own
// store instead of asking itself over gRPC.
func AuthenticateWith(a Authenticator) ProtectOption {
	return func(p *protected) { p.authn = a }
}

// Protect enforces p on its service; rdb is the service's Redis, where its
// audit stream lives. It panics on a policy that cannot be enforced as
// written (a programming error, caught by the first test).
func (g *Guard) Protect(p *Policy, rdb redis.UniversalClient, opts ...ProtectOption) {
	if err := p.check(); err != nil {
		panic(err)
	}
	ps := &protected{policy: p, st: store.New(rdb, p.Keyspace, g.log), rdb: rdb}
	for _, o := range opts {
		o(ps)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.services[p.Service] = ps
}

// Covers returns an error naming every registered method without a rule
// (and every rule without a method); a server must not serve then.
func (g *Guard) Covers(services map[string]grpc.ServiceInfo) error {
	g.mu.RLock()
	policies := map[string]*Policy{}
	for name, ps := range g.services {
		policies[name] = ps.policy
	}
	g.mu.RUnlock()
	if problems := coverage(policies, services); len(problems) > 0 {
		return errors.New("the access policy does not cover every method: " + strings.Join(problems, "; "))
	}
	return nil
}

// Rule is the rule for a full method ("/pkg.Service/Method"), if any.
func (g *Guard) Rule(fullMethod string) (Rule, bool) {
	svc, method := splitMethod(fullMethod)
	ps := g.lookup(svc)
	if ps == nil {
		return Rule{}, false
	}
	r, ok := ps.policy.Rules[method]
	return r, ok
}

func (g *Guard) lookup(service string) *protected {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.services[service]
}

// call is what the guard learned about one call before the handler runs.
type call struct {
	ps    *protected
	rule  Rule
	p     *Principal
	audit *audit.Call
	ctx   context.Context
}

// admit authenticates the call and checks its role (and, with req, its
// object). A nil call with a nil error means a public method.
func (g *Guard) admit(ctx context.Context, fullMethod string, req any) (*call, error) {
	if IsPublic(fullMethod) {
		return nil, nil
	}
	svc, method := splitMethod(fullMethod)
	ps := g.lookup(svc)
	authn := g.authn
	if ps != nil && ps.authn != nil {
		authn = ps.authn
	}
	var p *Principal
	token, err := BearerToken(ctx)
	switch {
	case errors.Is(err, errMissing) && g.mtls != nil:
		// No token: a partner system may present a client certificate.
		if p = g.mtls.Principal(ctx); p == nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case authn == nil:
		return nil, errInvalid
	default:
		if p, err = authn.Authenticate(ctx, token); errors.Is(err, ErrNotMine) {
			err = errInvalid
		}
		if err != nil {
			return nil, err
		}
	}
	c := &call{ps: ps, p: p}
	ctx = NewContext(ctx, p)
	if ps == nil {
		return nil, status.Errorf(codes.PermissionDenied, "%s is not open to anyone (no access policy)", svc)
	}
	if err := g.limiter.Allow(ctx, ps.rdb, ps.policy.Keyspace, p); err != nil {
		return nil, err
	}
	rule, ok := ps.policy.Rules[method]
	c.rule = rule
	c.audit = audit.NewCall(p, fullMethod, "", traceID(ctx), requestID(ctx), rule.Write)
	if !ok {
		err = status.Errorf(codes.PermissionDenied, "%s is not open to anyone (no rule in the access policy)", method)
	} else {
		err = c.authorize(method, req)
	}
	if err != nil {
		g.record(ctx, c, accessv1.AuditRecord_KIND_DENIAL, status.Code(err))
		return nil, err
	}
	c.ctx = audit.NewContext(ctx, c.audit)
	return c, nil
}

// authorize checks the rule against req (nil for a stream's first look,
// before any message) and notes the resource for the audit record.
func (c *call) authorize(method string, req any) error {
	err := authorize(c.p, method, c.rule, req)
	if m, ok := req.(proto.Message); ok && c.rule.Resource != "" {
		c.audit.Resource = audit.Clip(fieldValue(m.ProtoReflect(), c.rule.Resource))
	}
	return err
}

// deliver clears what the principal may not see from a response, or
// records that it saw personal data. It returns the message to send: resp
// itself, or a redacted copy (handlers may return messages they keep).
func (g *Guard) deliver(c *call, resp any) any {
	m, ok := resp.(proto.Message)
	if !ok || !HasSensitive(m.ProtoReflect().Descriptor()) || Sensitive(m) == 0 {
		return resp
	}
	if c.p.GetRole() == Staff || slices.Contains(c.rule.SensitiveTo, c.p.GetRole()) {
		g.record(c.ctx, c, accessv1.AuditRecord_KIND_SENSITIVE_READ, codes.OK)
		return resp
	}
	m = proto.Clone(m)
	Redact(m)
	return m
}

// record appends a refusal or sensitive read to the service's audit stream.
// It is written whatever becomes of the call (a cancelled caller does not
// cancel the record); a failure is logged, as the call itself is decided.
func (g *Guard) record(ctx context.Context, c *call, kind accessv1.AuditRecord_Kind, outcome codes.Code) {
	if c.ps == nil || c.audit == nil {
		return
	}
	rec := c.audit.Record(kind, c.ps.policy.Keyspace.Service(), "", outcome)
	if err := c.ps.st.Audit(context.WithoutCancel(ctx), rec); err != nil {
		g.log.ErrorContext(ctx, "audit record not written", "kind", kind, "method", rec.GetMethod(), "error", err)
	}
}

// Unary is the guard as a unary interceptor.
func (g *Guard) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		c, err := g.admit(ctx, info.FullMethod, req)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return handler(ctx, req)
		}
		resp, err := handler(c.ctx, req)
		if c.rule.checksResponse(c.p) {
			_, method := splitMethod(info.FullMethod)
			if checked := ownsResponse(c.p, method, c.rule, c.audit.Resource, resp, err); checked != err {
				if checked != nil {
					g.record(c.ctx, c, accessv1.AuditRecord_KIND_DENIAL, codes.PermissionDenied)
				}
				err = checked
			}
		}
		if err != nil {
			return nil, err
		}
		return g.deliver(c, resp), nil
	}
}

// Stream is the guard as a stream interceptor: the role is checked before
// the handler runs, the object rule on every message received, and
// sensitive fields are cleared from every message sent.
func (g *Guard) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		c, err := g.admit(ss.Context(), info.FullMethod, nil)
		if err != nil {
			return err
		}
		if c == nil {
			return handler(srv, ss)
		}
		_, method := splitMethod(info.FullMethod)
		return handler(srv, &guardedStream{ServerStream: ss, g: g, c: c, method: method})
	}
}

type guardedStream struct {
	grpc.ServerStream
	g      *Guard
	c      *call
	method string
}

func (s *guardedStream) Context() context.Context { return s.c.ctx }

func (s *guardedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := s.c.authorize(s.method, m); err != nil {
		s.g.record(s.c.ctx, s.c, accessv1.AuditRecord_KIND_DENIAL, status.Code(err))
		return err
	}
	return nil
}

func (s *guardedStream) SendMsg(m any) error {
	if s.c.rule.checksResponse(s.c.p) {
		if err := ownsResponse(s.c.p, s.method, s.c.rule, s.c.audit.Resource, m, nil); err != nil {
			s.g.record(s.c.ctx, s.c, accessv1.AuditRecord_KIND_DENIAL, codes.PermissionDenied)
			return err
		}
	}
	return s.ServerStream.SendMsg(s.g.deliver(s.c, m))
}

func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

func requestID(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(RequestIDHeader); len(v) == 1 {
		return v[0]
	}
	return ""
}

// String describes a principal for messages: "apiKeys/abc (ROLE_COUNCIL of councils/fordon)".
func String(p *Principal) string {
	if p.GetSubject() != "" {
		return fmt.Sprintf("%s (%s of %s)", p.GetId(), p.GetRole(), p.GetSubject())
	}
	return fmt.Sprintf("%s (%s)", p.GetId(), p.GetRole())
}
