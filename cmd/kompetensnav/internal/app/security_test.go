package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/app"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/telemetry"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startWith runs the all-in-one on a real redis-server with cfg's
// security settings, logging at debug into the returned buffer.
func startWith(t *testing.T, rdb redis.UniversalClient, cfg app.Config) (*app.App, *syncBuffer) {
	t.Helper()
	// As the binary does at start: spans (and so trace ids) are made.
	flush, err := telemetry.Setup(context.Background(), "kompetensnav-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flush(context.Background()) })
	logs := &syncBuffer{}
	cfg.HTTPAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Redis = testkit.Options(t, rdb)
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Gateway.AnonymousRate == 0 {
		cfg.Gateway.AnonymousRate = 10_000 // tests fire many calls without a key on purpose
	}
	a, err := app.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(5 * time.Second) })
	return a, logs
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Without a key nothing but health, readiness and the docs answers: every
// method of every service registered in the all-in-one is listed in a
// policy, and every one of them refuses a call without credentials, over
// gRPC and over REST (every path of the OpenAPI document).
func TestWithoutAKeyOnlyHealthAndDocsAnswer(t *testing.T) {
	a := start(t, testkit.Redis(t), false)
	conn := dialGRPC(t, a.GRPCAddr)
	methods := 0
	for svc, info := range a.ServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			if auth.IsPublic(full) {
				continue
			}
			methods++
			if _, ok := a.Guard.Rule(full); !ok {
				t.Errorf("%s has no policy rule", full)
			}
			if m.IsClientStream || m.IsServerStream {
				t.Errorf("%s streams: add it to this test", full)
				continue
			}
			err := conn.Invoke(context.Background(), full, &emptypb.Empty{}, &emptypb.Empty{})
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("%s without a key: %v", full, err)
			}
		}
	}
	if methods < 22 {
		t.Fatalf("only %d methods found", methods)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("gRPC health without a key: %v", err)
	}

	anon := client{t, "http://" + a.HTTPAddr, ""}
	for _, p := range []string{"/healthz", "/readyz", "/docs", "/openapi.json"} {
		if r := anon.do("GET", p, nil); r.status != http.StatusOK {
			t.Errorf("%s: %d", p, r.status)
		}
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name, In, Pattern string
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(anon.do("GET", "/openapi.json", nil).raw), &doc); err != nil {
		t.Fatal(err)
	}
	routes := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			// A path parameter becomes a value of its pattern
			// ("councils/[^/]+/needs/[^/]+" → "councils/x/needs/x").
			concrete := path
			for _, p := range op.Parameters {
				if p.In == "path" {
					concrete = strings.ReplaceAll(concrete, "{"+p.Name+"}", strings.ReplaceAll(p.Pattern, "[^/]+", "x"))
				}
			}
			if strings.Contains(concrete, "{") {
				t.Fatalf("%s: a path parameter without a pattern", path)
			}
			routes++
			r := anon.do(strings.ToUpper(method), concrete, map[string]any{})
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s %s without a key: %d %s", strings.ToUpper(method), concrete, r.status, r.raw)
			}
		}
	}
	if routes < 22 {
		t.Fatalf("only %d routes in the OpenAPI document", routes)
	}
}

// Malformed credentials are a 401 (UNAUTHENTICATED over gRPC), never a 500.
func TestMalformedCredentialsAre401(t *testing.T) {
	a := start(t, testkit.Redis(t), false)
	headers := map[string]string{
		"scheme only":     "Bearer",
		"scheme, space":   "Bearer ",
		"10 kB":           "Bearer " + strings.Repeat("k", 10_000),
		"wrong prefix":    "Basic " + a.BootstrapKey,
		"no scheme":       a.BootstrapKey,
		"unicode":         "Bearer kn_fördon_" + strings.Repeat("a", 43),
		"unknown key":     "Bearer " + auth.NewAPIKeySecret("nobody"),
		"bootstrap typo":  "Bearer " + a.BootstrapKey + "x",
		"two credentials": "Bearer " + a.BootstrapKey + ", Bearer x",
		"key-shaped junk": "Bearer kn_x_y",
	}
	for name, h := range headers {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+a.HTTPAddr+"/v1/councils", nil)
			req.Header.Set("Authorization", h)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%d, WWW-Authenticate %q: %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
			}
			// The same over gRPC, where the client lets the header through.
			ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", h)
			err = dialGRPC(t, a.GRPCAddr).Invoke(ctx, "/kompetensnav.councils.v1.CouncilsService/ListCouncils", &emptypb.Empty{}, &emptypb.Empty{})
			if c := status.Code(err); c != codes.Unauthenticated && !(name == "unicode" && c == codes.Internal && strings.Contains(err.Error(), "header")) {
				t.Fatalf("gRPC: %v", err)
			}
		})
	}
	// Two Authorization headers are two credentials: refused.
	req, _ := http.NewRequest("GET", "http://"+a.HTTPAddr+"/v1/councils", nil)
	req.Header.Add("Authorization", "Bearer "+a.BootstrapKey)
	req.Header.Add("Authorization", "Bearer "+a.BootstrapKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("two Authorization headers: %d", resp.StatusCode)
	}
}

// collectAudit waits until the access service's consumers have collected
// every entry of every service's audit stream, and every other consumer
// (procurement following councils' needs, councils following awards) has
// handled every event: each group of each stream has read and
// acknowledged all of it, so the store no longer changes by itself.
func collectAudit(t *testing.T, _ *app.App, rdb redis.UniversalClient) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	streams, err := events.Streams(context.Background(), rdb)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"councils", "access", "companies", "procurement", "skills", "enrolment"} {
		if !slices.Contains(streams, store.Keyspace(svc).Audit()) {
			streams = append(streams, store.Keyspace(svc).Audit())
		}
	}
	for _, stream := range streams {
		for {
			info, err := events.Inspect(context.Background(), rdb, stream)
			done := err == nil && len(info) == 1
			if done {
				for _, g := range info[0].Groups {
					done = done && g.Lag == 0 && g.Pending == 0
				}
				if strings.HasSuffix(stream, ":audit") {
					done = done && len(info[0].Groups) == 1 // the collector's group exists
				}
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stream %s not consumed: %+v %v", stream, info, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// The "done when", over REST through the gateway: the bootstrap
// key makes a council key; that key works within its own council and
// nowhere else, cannot approve; a partner cannot read needs; an auditor
// lists who did what, with trace ids; a revoked key stops working within
// the cache TTL; and no secret reaches the logs.
func TestSecurityEndToEnd(t *testing.T) {
	rdb := testkit.Redis(t)
	const ttl = 500 * time.Millisecond
	a, logs := startWith(t, rdb, app.Config{AuthCacheTTL: ttl})
	base := "http://" + a.HTTPAddr
	staff := client{t, base, a.BootstrapKey}
	staff.ok("POST", "/v1/councils?councilId=fordon", council)
	staff.ok("POST", "/v1/councils?councilId=handel", map[string]any{"displayName": "Handelsrådet", "sector": "SECTOR_RETAIL"})
	staff.ok("POST", "/v1/councils/handel/needs?needId=kassa", needBody())

	key := func(role, subject string) (string, string) {
		body := map[string]any{"displayName": "nyckel " + role, "role": role}
		if subject != "" {
			body["subject"] = subject
		}
		r := staff.ok("POST", "/v1/apiKeys", body)
		secret, _ := r["secret"].(string)
		name := r["apiKey"].(map[string]any)["name"].(string)
		if !strings.HasPrefix(secret, "kn_") {
			t.Fatalf("create key: %v", r)
		}
		return secret, name
	}
	councilSecret, councilKey := key("ROLE_COUNCIL", "councils/fordon")
	partnerSecret, _ := key("ROLE_PARTNER", "")
	auditorSecret, _ := key("ROLE_AUDITOR", "")
	fordon := client{t, base, councilSecret}

	// Its own council: create, edit, submit, read, list.
	fordon.ok("POST", "/v1/councils/fordon/needs?needId=el", needBody())
	fordon.ok("PATCH", "/v1/councils/fordon/needs/el", map[string]any{"headcount": 90})
	if n := fordon.ok("POST", "/v1/councils/fordon/needs/el:submit", map[string]any{}); n["state"] != "STATE_SUBMITTED" {
		t.Fatalf("submit: %v", n)
	}
	fordon.ok("GET", "/v1/councils/fordon/needs/el", nil)
	list := fordon.ok("GET", "/v1/councils/-/needs", nil)
	if ns, _ := list["needs"].([]any); len(ns) != 1 || ns[0].(map[string]any)["name"] != "councils/fordon/needs/el" {
		t.Fatalf("council's councils/- list: %v", list)
	}
	// Not another's, and no approving.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/councils/handel/needs/kassa"},
		{"GET", "/v1/councils/handel/needs"},
		{"POST", "/v1/councils/handel/needs"},
		{"POST", "/v1/councils/handel/needs/kassa:submit"},
		{"POST", "/v1/councils/fordon/needs/el:approve"},
		{"PATCH", "/v1/councils/fordon"},
		{"GET", "/v1/apiKeys"},
	} {
		var body any
		if c.method != "GET" {
			body = needBody()
			if strings.Contains(c.path, ":") || c.method == "PATCH" {
				body = map[string]any{}
			}
		}
		if r := fordon.do(c.method, c.path, body); r.status != http.StatusForbidden {
			t.Errorf("council key %s %s: %d %s", c.method, c.path, r.status, r.raw)
		}
	}
	// A partner reads the council directory, never a need.
	partner := client{t, base, partnerSecret}
	partner.ok("GET", "/v1/councils", nil)
	if r := partner.do("GET", "/v1/councils/fordon/needs/el", nil); r.status != http.StatusForbidden {
		t.Errorf("partner reads a need: %d", r.status)
	}
	if r := partner.do("GET", "/v1/councils/-/needs", nil); r.status != http.StatusForbidden {
		t.Errorf("partner lists needs: %d", r.status)
	}
	// Staff approves.
	staff.ok("POST", "/v1/councils/fordon/needs/el:approve", map[string]any{})
	// Who am I.
	if p := fordon.ok("GET", "/v1/principal", nil); p["id"] != councilKey || p["subject"] != "councils/fordon" {
		t.Fatalf("principal %v", p)
	}

	// The auditor lists who did what, with trace ids.
	collectAudit(t, a, rdb)
	auditor := client{t, base, auditorSecret}
	filter := url.QueryEscape(fmt.Sprintf(`principal = %q`, councilKey))
	recs := auditor.ok("GET", "/v1/auditRecords?pageSize=100&filter="+filter, nil)["auditRecords"].([]any)
	byMethod := map[string][]string{}
	for _, r := range recs {
		m := r.(map[string]any)
		if tid, _ := m["traceId"].(string); len(tid) != 32 {
			t.Errorf("record without a trace id: %v", m)
		}
		if m["requestId"] == "" || m["principalSubject"] != "councils/fordon" || m["role"] != "ROLE_COUNCIL" {
			t.Errorf("record %v", m)
		}
		method := m["method"].(string)
		byMethod[method[strings.LastIndex(method, "/")+1:]] = append(byMethod[method[strings.LastIndex(method, "/")+1:]], m["outcome"].(string))
	}
	for method, want := range map[string]string{"CreateNeed": "OK,PERMISSION_DENIED", "UpdateNeed": "OK", "SubmitNeed": "PERMISSION_DENIED,OK", "ApproveNeed": "PERMISSION_DENIED", "GetNeed": "PERMISSION_DENIED"} {
		got := byMethod[method]
		for _, w := range strings.Split(want, ",") {
			if !strings.Contains(strings.Join(got, ","), w) {
				t.Errorf("%s: outcomes %v, want %s among them", method, got, w)
			}
		}
	}
	if len(recs) < 8 {
		t.Fatalf("%d records of the council key: %v", len(recs), recs)
	}
	// The approval is staff's, by the bootstrap key.
	appr := auditor.ok("GET", "/v1/auditRecords?filter="+url.QueryEscape(`method = "kompetensnav.councils.v1.CouncilsService/ApproveNeed" AND outcome = "OK"`), nil)["auditRecords"].([]any)
	if len(appr) != 1 || appr[0].(map[string]any)["principal"] != auth.BootstrapID {
		t.Fatalf("approval records %v", appr)
	}
	if r := auditor.do("POST", "/v1/apiKeys", map[string]any{"displayName": "x", "role": "ROLE_STAFF"}); r.status != http.StatusForbidden {
		t.Fatalf("auditor creates a key: %d", r.status)
	}
	if r := fordon.do("GET", "/v1/auditRecords", nil); r.status != http.StatusForbidden {
		t.Fatalf("council reads the audit log: %d", r.status)
	}

	// Revoked: the access service refuses at once, councils within its
	// cache TTL.
	staff.ok("POST", "/v1/"+councilKey+":revoke", map[string]any{})
	revoked := time.Now()
	if r := fordon.do("GET", "/v1/principal", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("access service after revocation: %d", r.status)
	}
	for {
		r := fordon.do("GET", "/v1/councils/fordon/needs/el", nil)
		if r.status == http.StatusUnauthorized {
			break
		}
		if r.status != http.StatusOK || time.Since(revoked) > 5*time.Second {
			t.Fatalf("revoked key after %v: %d %s", time.Since(revoked), r.status, r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(revoked); took > ttl+300*time.Millisecond {
		t.Fatalf("revocation took %v with a cache TTL of %v", took, ttl)
	}

	// No secret in any log line of the whole run.
	out := logs.String()
	for name, secret := range map[string]string{"council key": councilSecret[len(councilSecret)-43:],
		"partner key": partnerSecret[len(partnerSecret)-43:], "bootstrap key": a.BootstrapKey} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds the %s", name)
		}
	}
	if !strings.Contains(out, "credential="+councilKey) {
		t.Errorf("the access log does not name the key used")
	}
}

// A bootstrap key shorter than 32 characters is refused at start.
func TestShortBootstrapKeyRefusesToStart(t *testing.T) {
	_, err := app.Start(context.Background(), app.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Logger: testkit.Logger(), BootstrapKey: "too-short"})
	if err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("Start with a short bootstrap key: %v", err)
	}
}

// A burst over a principal's rate is 429 with Retry-After over REST;
// another principal is not affected.
func TestRateLimitOverREST(t *testing.T) {
	rdb := testkit.Redis(t)
	a, _ := startWith(t, rdb, app.Config{RateLimits: auth.RateLimits{auth.Partner: 3}})
	base := "http://" + a.HTTPAddr
	staff := client{t, base, a.BootstrapKey}
	partnerKey := func(name string) client {
		r := staff.ok("POST", "/v1/apiKeys", map[string]any{"displayName": name, "role": "ROLE_PARTNER"})
		return client{t, base, r["secret"].(string)}
	}
	partner, other := partnerKey("Arbetsförmedlingens statistik"), partnerKey("Trygghetsrådets statistik")
	get := func(c client) *http.Response {
		req, _ := http.NewRequest("GET", base+"/v1/councils", nil)
		req.Header.Set("Authorization", "Bearer "+c.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	limited := 0
	for range 15 {
		resp := get(partner)
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
			if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
				t.Fatalf("429 without a Retry-After: %q", ra)
			}
		} else if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if limited == 0 {
		t.Fatal("a burst of 15 at 3 a second was never limited")
	}
	// Another principal of the same role, right after the burst, has its
	// own allowance.
	for i := range 3 {
		if resp := get(other); resp.StatusCode != http.StatusOK {
			t.Fatalf("another partner's call %d right after the burst: %d", i+1, resp.StatusCode)
		}
	}
	staff.ok("GET", "/v1/councils", nil) // staff has no limit in this configuration
}
