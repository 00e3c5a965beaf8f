package gateway_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"google.golang.org/grpc/codes"
)

// The gateway authenticates nobody: it hands the caller's Authorization
// header to the backend as "authorization" metadata, once, and nothing
// else carries the secret.
func TestAuthorizationIsForwardedOnce(t *testing.T) {
	fake, addr := backend(t)
	url := startGateway(t, t, addr, 0)
	secret := auth.NewAPIKeySecret("fordon-portal")
	resp, body := do(t, http.MethodGet, url+"/v1/councils/retail", nil, http.Header{"Authorization": {"Bearer " + secret}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	md := fake.lastMD(t)
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+secret {
		t.Fatalf("backend got authorization %q", got)
	}
	for k, vs := range md {
		for _, v := range vs {
			if k != "authorization" && strings.Contains(v, secret) {
				t.Errorf("the secret also travels as %q", k)
			}
		}
	}
}

// A 401 from a backend says how to authenticate (RFC 6750), and whether the
// credential sent was the problem.
func TestUnauthenticatedIs401WithChallenge(t *testing.T) {
	_, addr := backend(t)
	url := startGateway(t, t, addr, 0)

	resp, body := do(t, http.MethodGet, url+"/v1/councils/unauthenticated", nil, http.Header{"Authorization": {}})
	wantError(t, resp, body, http.StatusUnauthorized, codes.Unauthenticated)
	if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="kompetensnav"` {
		t.Errorf("WWW-Authenticate %q without credentials", got)
	}
	resp, body = do(t, http.MethodGet, url+"/v1/councils/unauthenticated", nil, http.Header{"Authorization": {"Bearer nope"}})
	wantError(t, resp, body, http.StatusUnauthorized, codes.Unauthenticated)
	if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="kompetensnav", error="invalid_token"` {
		t.Errorf("WWW-Authenticate %q with a bad token", got)
	}
	// Other errors carry no challenge.
	resp, _ = do(t, http.MethodGet, url+"/v1/councils/denied", nil, nil)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("403: status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The access log names the key a request used (its id is no secret) and
// never the secret, whatever the request.
func TestAccessLogRedactsCredentials(t *testing.T) {
	_, addr := backend(t)
	var logged lockedBuffer
	url := startGatewayLogging(t, t, addr, 0, slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	secret := auth.NewAPIKeySecret("fordon-portal")
	for _, path := range []string{"/v1/councils/retail", "/v1/councils/missing", "/v1/councils/unauthenticated", "/nope", "/healthz"} {
		do(t, http.MethodGet, url+path, nil, http.Header{"Authorization": {"Bearer " + secret}})
	}
	do(t, http.MethodGet, url+"/v1/councils/retail", nil, http.Header{"Authorization": {"Bearer opaque-" + secret[3:]}})
	do(t, http.MethodGet, url+"/v1/councils/retail", nil, http.Header{"Authorization": {secret}})
	out := logged.String()
	random := secret[len(secret)-43:]
	if strings.Contains(out, random) {
		t.Fatalf("the log holds the secret:\n%s", out)
	}
	for _, want := range []string{"credential=apiKeys/fordon-portal", `credential="bearer (redacted)"`, "credential=malformed"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}
