package gateway

import (
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// securityHeaders sets what every response should say to a browser: do
// not guess content types, send no referrer, do not frame the API; over
// TLS, keep using TLS. (/docs sets its own Content-Security-Policy.)
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// corsHeaders are what a browser page of an allowed origin may send.
const corsHeaders = "Authorization, Content-Type, If-Match, X-Request-Id"

// cors lets pages of the allowed origins call the API from a browser; with
// none allowed (the default) no CORS header is ever sent and browsers keep
// other origins out. Preflight requests are answered here.
func cors(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && slices.Contains(origins, origin)
		if allowed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if allowed {
				h := w.Header()
				h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", corsHeaders)
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			w.WriteHeader(http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// DefaultAnonymousRate is how many calls without credentials one address
// may make a second (each answered 401); more are 429.
const DefaultAnonymousRate = 10

// anonymousLimiter limits callers without credentials by IP address: they
// are answered by the gateway alone, so the services' per-principal limits
// do not see them. Kept in memory, per gateway replica: it guards the
// gateway itself.
type anonymousLimiter struct {
	perSecond int
	mu        sync.Mutex
	byIP      map[string]*rate.Limiter
	seen      map[string]time.Time
}

func newAnonymousLimiter(perSecond int) *anonymousLimiter {
	if perSecond <= 0 {
		perSecond = DefaultAnonymousRate
	}
	return &anonymousLimiter{perSecond: perSecond, byIP: map[string]*rate.Limiter{}, seen: map[string]time.Time{}}
}

// maxTrackedIPs bounds the memory the limiter holds; beyond it, addresses
// not seen for a minute are forgotten.
const maxTrackedIPs = 100_000

// reserve takes one call for the address of r, or says how long to wait.
func (l *anonymousLimiter) reserve(r *http.Request) (time.Duration, bool) {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.byIP) >= maxTrackedIPs {
		for k, t := range l.seen {
			if now.Sub(t) > time.Minute {
				delete(l.byIP, k)
				delete(l.seen, k)
			}
		}
	}
	lim, ok := l.byIP[ip]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(l.perSecond), l.perSecond)
		l.byIP[ip] = lim
	}
	l.seen[ip] = now
	if lim.AllowN(now, 1) {
		return 0, true
	}
	return time.Duration(float64(time.Second) / float64(l.perSecond)), false
}

// tooMany is RESOURCE_EXHAUSTED with a RetryInfo, which the error handler
// turns into 429 and Retry-After.
func tooMany(wait time.Duration, msg string) error {
	st := status.New(codes.ResourceExhausted, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)}); err == nil {
		st = d
	}
	return st.Err()
}

// retryAfter sets Retry-After (whole seconds, at least 1) from an error's
// RetryInfo, as RFC 9110 asks of a 429.
func retryAfter(w http.ResponseWriter, err error) {
	if hse, ok := err.(*runtime.HTTPStatusError); ok {
		err = hse.Err
	}
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			secs := int(ri.GetRetryDelay().AsDuration().Seconds() + 0.999)
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			return
		}
	}
}
