package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
)

type requestIDKey struct{}

// RequestID is the request id of a request the gateway is handling.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID gives every request an id that the client, the gateway's
// log and the backend's log all share: the client's own X-Request-Id if it
// is sane (it ends up in log lines, so nothing that could forge or bloat
// them), otherwise a new UUID. The id is written back into the request's
// header, from where headerMatcher forwards it to the backend.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(server.RequestIDHeader)
		if !saneRequestID(id) {
			id = uuid.NewString()
		}
		r.Header.Set(server.RequestIDHeader, id)
		w.Header().Set(server.RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// saneRequestID: 1–128 of [A-Za-z0-9._:-], the same rule as the API's
// request_id fields.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.ContainsRune("._:-", c):
		default:
			return false
		}
	}
	return true
}

// headerMatcher forwards the request id as gRPC metadata and otherwise
// does what grpc-gateway does by default (permanent HTTP headers with the
// grpcgateway- prefix; nothing else, so clients cannot set arbitrary
// metadata the backends might trust).
func headerMatcher(key string) (string, bool) {
	if strings.EqualFold(key, server.RequestIDHeader) {
		return server.RequestIDHeader, true
	}
	if strings.EqualFold(key, "Authorization") {
		// grpc-gateway forwards it as "authorization" itself; not also as
		// grpcgateway-authorization, a second copy of the secret.
		return "", false
	}
	return runtime.DefaultHeaderMatcher(key)
}

// withTimeout bounds the whole request; the deadline travels to the backend
// as the gRPC deadline, so it stops working on a request nobody awaits.
func withTimeout(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// limitBody reads the body before any backend is called, so that a body
// over MaxBodyBytes is a 413 (grpc-gateway would report it as a terse 400,
// "unexpected EOF" for instance).
func (g *Gateway) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		tooLarge := fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes)
		if r.ContentLength > MaxBodyBytes {
			g.writeError(w, r, http.StatusRequestEntityTooLarge, codes.InvalidArgument, tooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			// INVALID_ARGUMENT rather than RESOURCE_EXHAUSTED: the
			// same body will never succeed, so it must not look retryable.
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				g.writeError(w, r, http.StatusRequestEntityTooLarge, codes.InvalidArgument, tooLarge)
			} else {
				g.writeError(w, r, http.StatusBadRequest, codes.InvalidArgument, "reading request body: "+err.Error())
			}
			return
		}
		// What the body must be (JSON of the route's message) is checked
		// once the route is known (strict).
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// nameSpan names the request's span after the route pattern rather than the
// path, so traces group by API method and not by resource name.
func nameSpan(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			route := p.String()
			span := trace.SpanFromContext(r.Context())
			span.SetName(r.Method + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
		next(w, r, params)
	}
}

// accessLog writes one line per request with the request id (and, through
// the platform logger, the trace id). Probes are logged at debug only, as
// they arrive every few seconds.
func (g *Gateway) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		switch {
		case r.URL.Path == "/healthz" || r.URL.Path == "/readyz":
			level = slog.LevelDebug
		case rec.status >= 500:
			level = slog.LevelWarn
		}
		g.log.Log(r.Context(), level, "http request",
			"method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration", time.Since(start), "request_id", RequestID(r.Context()),
			"credential", credential(r.Header.Get("Authorization")))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush keeps server-streaming responses (grpc-gateway asserts
// http.Flusher) working through the recorder.
func (s *statusRecorder) Flush() { _ = http.NewResponseController(s.ResponseWriter).Flush() }

// credential describes a request's Authorization header for the log
// without its secret: the key id of an API key (not secret; it names the
// key to revoke), otherwise only whether there was one.
func credential(h string) string {
	if h == "" {
		return "none"
	}
	token, err := auth.ParseBearer(h)
	if err != nil {
		return "malformed"
	}
	if id, ok := auth.ParseAPIKey(token); ok {
		return "apiKeys/" + id
	}
	return "bearer (redacted)"
}
