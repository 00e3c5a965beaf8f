package gateway_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kompetensnav/kompetensnav/gateway"
	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/kompetensnav/kompetensnav/services/platform/tlsx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// fakeCouncils stands in for the councils service: GetCouncil answers by
// name with a council or a chosen error, and every call records what the
// gateway sent. The real service is tested in its own module.
type fakeCouncils struct {
	councilsv1.UnimplementedCouncilsServiceServer

	mu         sync.Mutex
	requestIDs [][]string // x-request-id metadata of each call
	md         []metadata.MD
	creates    []*councilsv1.CreateCouncilRequest
}

func (f *fakeCouncils) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requestIDs = append(f.requestIDs, md.Get("x-request-id"))
	f.md = append(f.md, md)
}

func (f *fakeCouncils) lastMD(t *testing.T) metadata.MD {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.md) == 0 {
		t.Fatal("backend was not called")
	}
	return f.md[len(f.md)-1]
}

func (f *fakeCouncils) lastRequestID(t *testing.T) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requestIDs) == 0 {
		t.Fatal("backend was not called")
	}
	ids := f.requestIDs[len(f.requestIDs)-1]
	if len(ids) != 1 {
		t.Fatalf("backend got x-request-id %q, want exactly one", ids)
	}
	return ids[0]
}

func (f *fakeCouncils) createCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.creates)
}

func (f *fakeCouncils) GetCouncil(ctx context.Context, req *councilsv1.GetCouncilRequest) (*councilsv1.SectorCouncil, error) {
	f.record(ctx)
	switch req.GetName() {
	case "councils/retail":
		return &councilsv1.SectorCouncil{
			Name:                "councils/retail",
			DisplayName:         "Handelns kompetensråd",
			Sector:              commonv1.Sector_SECTOR_RETAIL,
			MemberOrganisations: []string{"Handels", "Svensk Handel"},
		}, nil
	case "councils/invalid":
		return nil, apierr.Field("name", "no such council id format")
	case "councils/missing":
		return nil, apierr.NotFound(req.GetName())
	case "councils/stale":
		return nil, apierr.Aborted(req.GetName())
	case "councils/taken":
		return nil, status.Error(codes.AlreadyExists, "councils/taken already exists")
	case "councils/busy":
		return nil, apierr.FailedPrecondition("the council has open needs")
	case "councils/denied":
		return nil, status.Error(codes.PermissionDenied, "not your council")
	case "councils/unauthenticated":
		return nil, status.Error(codes.Unauthenticated, "missing credentials")
	case "councils/slow":
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return nil, status.Error(codes.Internal, "unexpected name in test")
}

func (f *fakeCouncils) CreateCouncil(ctx context.Context, req *councilsv1.CreateCouncilRequest) (*councilsv1.SectorCouncil, error) {
	f.record(ctx)
	f.mu.Lock()
	f.creates = append(f.creates, req)
	f.mu.Unlock()
	c := req.GetCouncil()
	c.Name = "councils/" + req.GetCouncilId()
	return c, nil
}

// backend runs the fake behind a real platform gRPC server on loopback.
func backend(t *testing.T) (*fakeCouncils, string) {
	t.Helper()
	fake := &fakeCouncils{}
	conn := testkit.Serve(t, func(s *grpc.Server) {
		councilsv1.RegisterCouncilsServiceServer(s, fake)
		accessv1.RegisterAccessServiceServer(s, accessv1.UnimplementedAccessServiceServer{})
		companiesv1.RegisterCompaniesServiceServer(s, fakeCompanies{})
		procurementv1.RegisterProcurementServiceServer(s, procurementv1.UnimplementedProcurementServiceServer{})
		skillsv1.RegisterSkillsServiceServer(s, skillsv1.UnimplementedSkillsServiceServer{})
	})
	return fake, conn.Target()
}

// everyAddr is addr for every service the gateway fronts.
func everyAddr(addr string) map[string]string {
	addrs := map[string]string{}
	for _, s := range gateway.Services {
		addrs[s.Name] = addr
	}
	return addrs
}

// startGateway serves a gateway in front of addr over real HTTP. Both are
// cleaned up with cleanup's test, which may outlive t.
func startGateway(t, cleanup *testing.T, addr string, timeout time.Duration) string {
	t.Helper()
	return startGatewayLogging(t, cleanup, addr, timeout, testkit.Logger())
}

func startGatewayLogging(t, cleanup *testing.T, addr string, timeout time.Duration, log *slog.Logger) string {
	t.Helper()
	gw, err := gateway.New(context.Background(), gateway.Config{
		Addrs:          everyAddr(addr),
		Logger:         log,
		RequestTimeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	cleanup.Cleanup(func() {
		srv.Close()
		if err := gw.Close(); err != nil {
			cleanup.Errorf("closing gateway: %v", err)
		}
	})
	return srv.URL
}

type apiError struct {
	Code    int32            `json:"code"`
	Message string           `json:"message"`
	Details []map[string]any `json:"details"`
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, method, url string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	// The fake backends authenticate nobody, but the gateway answers a
	// call without credentials with 401 itself: send some unless the test
	// says otherwise (an empty Authorization list sends none).
	req.Header.Set("Authorization", "Bearer test-credential")
	for k, v := range header {
		req.Header[k] = v
	}
	if len(req.Header["Authorization"]) == 0 || req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// wantError checks an error response: HTTP status, JSON body with the
// gRPC code, and the request id header that every response carries.
func wantError(t *testing.T, resp *http.Response, body []byte, httpStatus int, code codes.Code) apiError {
	t.Helper()
	if resp.StatusCode != httpStatus {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, httpStatus, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on the error response")
	}
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	if codes.Code(e.Code) != code {
		t.Errorf("code %v, want %v; body %s", codes.Code(e.Code), code, body)
	}
	if e.Message == "" {
		t.Errorf("empty message; body %s", body)
	}
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(body, &raw)
	if _, ok := raw["details"]; !ok {
		t.Errorf("no details in %s", body)
	}
	return e
}

func TestGetMapsToRPCAndWritesLowerCamelJSON(t *testing.T) {
	fake, addr := backend(t)
	url := startGateway(t, t, addr, 0)

	resp, body := do(t, http.MethodGet, url+"/v1/councils/retail", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name":                "councils/retail",
		"displayName":         "Handelns kompetensråd",
		"sector":              "SECTOR_RETAIL",
		"memberOrganisations": []any{"Handels", "Svensk Handel"},
	}
	for k, v := range want {
		if gb, _ := json.Marshal(got[k]); string(gb) != mustJSON(v) {
			t.Errorf("%s = %s, want %s", k, gb, mustJSON(v))
		}
	}
	// Unset fields are left out, proto names never appear.
	for _, k := range []string{"contactEmail", "etag", "createTime", "display_name"} {
		if _, ok := got[k]; ok {
			t.Errorf("unexpected field %q in %s", k, body)
		}
	}
	_ = fake.lastRequestID(t)
}

func TestPostBodyAndQueryReachBackend(t *testing.T) {
	fake, addr := backend(t)
	url := startGateway(t, t, addr, 0)

	resp, body := do(t, http.MethodPost, url+"/v1/councils?councilId=retail&requestId=r-1",
		strings.NewReader(`{"displayName": "Handelns kompetensråd", "sector": "SECTOR_RETAIL", "municipalities": ["1480"]}`), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if fake.createCount() != 1 {
		t.Fatalf("backend called %d times", fake.createCount())
	}
	req := fake.creates[0]
	if req.GetCouncilId() != "retail" || req.GetRequestId() != "r-1" ||
		req.GetCouncil().GetDisplayName() != "Handelns kompetensråd" ||
		req.GetCouncil().GetSector() != commonv1.Sector_SECTOR_RETAIL ||
		len(req.GetCouncil().GetMunicipalities()) != 1 {
		t.Errorf("backend got %v", req)
	}
	if !strings.Contains(string(body), `"name":"councils/retail"`) {
		t.Errorf("response %s", body)
	}
}

func TestErrorsMapToHTTPStatus(t *testing.T) {
	_, addr := backend(t)
	url := startGateway(t, t, addr, 0)

	for _, tc := range []struct {
		council    string
		httpStatus int
		code       codes.Code
	}{
		{"invalid", http.StatusBadRequest, codes.InvalidArgument},
		{"missing", http.StatusNotFound, codes.NotFound},
		{"stale", http.StatusConflict, codes.Aborted},
		{"taken", http.StatusConflict, codes.AlreadyExists},
		{"busy", http.StatusBadRequest, codes.FailedPrecondition},
		{"denied", http.StatusForbidden, codes.PermissionDenied},
	} {
		t.Run(tc.council, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, url+"/v1/councils/"+tc.council, nil, nil)
			wantError(t, resp, body, tc.httpStatus, tc.code)
		})
	}
}

func TestBadRequestDetailsAsJSON(t *testing.T) {
	_, addr := backend(t)
	url := startGateway(t, t, addr, 0)

	check := func(t *testing.T, resp *http.Response, body []byte, field string) {
		t.Helper()
		e := wantError(t, resp, body, http.StatusBadRequest, codes.InvalidArgument)
		for _, d := range e.Details {
			if d["@type"] != "type.googleapis.com/google.rpc.BadRequest" {
				continue
			}
			vs, _ := d["fieldViolations"].([]any)
			for _, v := range vs {
				v, _ := v.(map[string]any)
				if v["field"] == field && v["description"] != "" {
					if _, ok := v["reason"]; ok {
						t.Errorf("unset reason written: %s", body)
					}
					return
				}
			}
		}
		t.Errorf("no BadRequest field violation for %q in %s", field, body)
	}

	t.Run("from the service", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, url+"/v1/councils/invalid", nil, nil)
		check(t, resp, body, "name")
	})
	t.Run("from the platform's proto validation", func(t *testing.T) {
		resp, body := do(t, http.MethodPost, url+"/v1/councils", strings.NewReader(`{"sector": "SECTOR_RETAIL"}`), nil)
		check(t, resp, body, "council.displayName") // JSON paths over REST
	})
}

func TestRequestID(t *testing.T) {
	fake, addr := backend(t)
	url := startGateway(t, t, addr, 0)

	t.Run("generated when absent", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, url+"/v1/councils/retail", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		id := resp.Header.Get("X-Request-Id")
		if _, err := uuid.Parse(id); err != nil {
			t.Errorf("X-Request-Id %q is not a UUID", id)
		}
		if got := fake.lastRequestID(t); got != id {
			t.Errorf("backend got %q, response says %q", got, id)
		}
	})
	t.Run("echoed when given", func(t *testing.T) {
		const id = "partner-7.call:42_x"
		// A Grpc-Metadata- header must not smuggle in a second id.
		h := http.Header{"X-Request-Id": {id}, "Grpc-Metadata-X-Request-Id": {"forged"}}
		resp, _ := do(t, http.MethodGet, url+"/v1/councils/retail", nil, h)
		if got := resp.Header.Get("X-Request-Id"); got != id {
			t.Errorf("response X-Request-Id %q, want %q", got, id)
		}
		if got := fake.lastRequestID(t); got != id {
			t.Errorf("backend got %q, want %q", got, id)
		}
	})
	t.Run("replaced when not sane", func(t *testing.T) {
		for _, bad := range []string{"has space", "new\u2028line", strings.Repeat("a", 129)} {
			resp, _ := do(t, http.MethodGet, url+"/v1/councils/retail", nil, http.Header{"X-Request-Id": {bad}})
			got := resp.Header.Get("X-Request-Id")
			if _, err := uuid.Parse(got); err != nil {
				t.Errorf("for %q: X-Request-Id %q, want a new UUID", bad, got)
			}
			if be := fake.lastRequestID(t); be != got {
				t.Errorf("for %q: backend got %q, response says %q", bad, be, got)
			}
		}
	})
	t.Run("on errors too", func(t *testing.T) {
		resp, _ := do(t, http.MethodGet, url+"/v1/councils/missing", nil, http.Header{"X-Request-Id": {"err-1"}})
		if got := resp.Header.Get("X-Request-Id"); got != "err-1" {
			t.Errorf("X-Request-Id %q", got)
		}
	})
}

func TestBodyLimit(t *testing.T) {
	fake, addr := backend(t)
	url := startGateway(t, t, addr, 0)
	big := func() io.Reader {
		return io.MultiReader(strings.NewReader(`{"displayName": "`),
			bytes.NewReader(bytes.Repeat([]byte("a"), gateway.MaxBodyBytes)), strings.NewReader(`"}`))
	}

	t.Run("declared length", func(t *testing.T) {
		b, _ := io.ReadAll(big())
		resp, body := do(t, http.MethodPost, url+"/v1/councils", bytes.NewReader(b), nil)
		wantError(t, resp, body, http.StatusRequestEntityTooLarge, codes.InvalidArgument)
	})
	t.Run("chunked", func(t *testing.T) {
		// A reader of unknown length makes the client stream the body, so
		// only reading it reveals the size.
		resp, body := do(t, http.MethodPost, url+"/v1/councils", struct{ io.Reader }{big()}, nil)
		wantError(t, resp, body, http.StatusRequestEntityTooLarge, codes.InvalidArgument)
	})
	t.Run("just under the limit passes", func(t *testing.T) {
		pad := gateway.MaxBodyBytes - len(`{"displayName": "x", "sector": "SECTOR_RETAIL"}`)
		b := `{"displayName": "x", "sector": "SECTOR_RETAIL"}` + strings.Repeat(" ", pad)
		resp, body := do(t, http.MethodPost, url+"/v1/councils", strings.NewReader(b), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	if n := fake.createCount(); n != 1 {
		t.Errorf("backend CreateCouncil called %d times, want only for the body under the limit", n)
	}
}

func TestBadJSONBodies(t *testing.T) {
	fake, addr := backend(t)
	url := startGateway(t, t, addr, 0)

	for _, tc := range []struct{ name, body, inMessage string }{
		{"unknown field", `{"displayName": "x", "sector": "SECTOR_RETAIL", "colour": "red"}`, "unknown field"},
		{"truncated", `{"displayName": "x"`, "not valid JSON"},
		{"not JSON", `displayName=x`, "not valid JSON"},
		{"trailing garbage", `{"displayName": "x"} {}`, "not valid JSON"},
		{"wrong type", `{"displayName": 42}`, "displayName"},
		{"unknown enum", `{"displayName": "x", "sector": "SECTOR_MINING"}`, "SECTOR_MINING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, url+"/v1/councils", strings.NewReader(tc.body), nil)
			e := wantError(t, resp, body, http.StatusBadRequest, codes.InvalidArgument)
			if !strings.Contains(e.Message, tc.inMessage) {
				t.Errorf("message %q does not mention %q", e.Message, tc.inMessage)
			}
		})
	}
	if n := fake.createCount(); n != 0 {
		t.Errorf("backend called %d times for bad bodies", n)
	}
}

func TestRequestTimeout(t *testing.T) {
	_, addr := backend(t)
	url := startGateway(t, t, addr, 200*time.Millisecond)
	start := time.Now()
	resp, body := do(t, http.MethodGet, url+"/v1/councils/slow", nil, nil)
	wantError(t, resp, body, http.StatusGatewayTimeout, codes.DeadlineExceeded)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestUnknownRoute(t *testing.T) {
	_, addr := backend(t)
	url := startGateway(t, t, addr, 0)
	resp, body := do(t, http.MethodGet, url+"/v1/nothing/here/at/all", nil, nil)
	wantError(t, resp, body, http.StatusNotFound, codes.NotFound)
}

func TestOpenAPIAndDocs(t *testing.T) {
	_, addr := backend(t)
	url := startGateway(t, t, addr, 0)

	resp, body := do(t, http.MethodGet, url+"/openapi.json", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		Swagger string                     `json:"swagger"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.Swagger != "2.0" || doc.Paths["/v1/councils"] == nil {
		t.Errorf("swagger %q, paths %v", doc.Swagger, len(doc.Paths))
	}

	resp, body = do(t, http.MethodGet, url+"/docs", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	if !strings.Contains(page, `fetch("openapi.json"`) || !strings.Contains(page, "<html") {
		t.Errorf("docs page does not load openapi.json")
	}
	// Self-contained: nothing fetched from elsewhere.
	for _, ext := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(page, ext) {
			t.Errorf("docs page references %q", ext)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Run("healthz", func(t *testing.T) {
		_, addr := backend(t)
		url := startGateway(t, t, addr, 0)
		resp, body := do(t, http.MethodGet, url+"/healthz", nil, nil)
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
	})

	t.Run("readyz follows the backend", func(t *testing.T) {
		var url string
		t.Run("while serving", func(st *testing.T) {
			// The backend ends with this subtest; the gateway lives on.
			_, addr := backend(st)
			url = startGateway(st, t, addr, 0)
			resp, body := do(st, http.MethodGet, url+"/readyz", nil, nil)
			if resp.StatusCode != http.StatusOK {
				st.Fatalf("status %d: %s", resp.StatusCode, body)
			}
		})
		resp, body := do(t, http.MethodGet, url+"/readyz", nil, nil)
		wantNotReady(t, resp, body)
	})

	t.Run("readyz with nothing listening", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := lis.Addr().String()
		_ = lis.Close()
		url := startGateway(t, t, addr, 0)
		resp, body := do(t, http.MethodGet, url+"/readyz", nil, nil)
		wantNotReady(t, resp, body)
		// Liveness does not depend on the backends.
		if resp, _ := do(t, http.MethodGet, url+"/healthz", nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("healthz %d", resp.StatusCode)
		}
		// And an API call says the backend is unavailable.
		resp, body = do(t, http.MethodGet, url+"/v1/councils/retail", nil, nil)
		wantError(t, resp, body, http.StatusServiceUnavailable, codes.Unavailable)
	})
}

func wantNotReady(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", resp.StatusCode, body)
	}
	var got struct {
		NotServing map[string]string `json:"notServing"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.NotServing["councils"] == "" {
		t.Errorf("body does not name the councils backend: %s", body)
	}
}

func TestNewNeedsEveryAddress(t *testing.T) {
	_, err := gateway.New(context.Background(), gateway.Config{Addrs: map[string]string{}})
	if err == nil || !strings.Contains(err.Error(), "-councils-addr") {
		t.Errorf("err = %v, want one naming -councils-addr", err)
	}
}

func TestNewHTTPServer(t *testing.T) {
	s := gateway.NewHTTPServer(":0", http.NotFoundHandler())
	if s.ReadHeaderTimeout == 0 || s.ReadTimeout == 0 || s.WriteTimeout == 0 || s.IdleTimeout == 0 || s.MaxHeaderBytes != gateway.MaxHeaderBytes {
		t.Errorf("server without limits: %+v", s)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestWrongMethodIs405(t *testing.T) {
	_, addr := backend(t)
	url := startGateway(t, t, addr, 0)
	resp, body := do(t, http.MethodDelete, url+"/v1/councils", nil, nil)
	wantError(t, resp, body, http.StatusMethodNotAllowed, codes.Unimplemented)
}

// Every operation in the OpenAPI document says what it does beyond its
// summary and lists the errors it can answer.
func TestOpenAPIOperationsDescribeThemselvesAndTheirErrors(t *testing.T) {
	_, addr := backend(t)
	url := startGateway(t, t, addr, 0)
	_, body := do(t, http.MethodGet, url+"/openapi.json", nil, nil)
	var doc struct {
		Paths map[string]map[string]struct {
			Summary, Description string
			Responses            map[string]json.RawMessage
		} `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if op.Summary == "" || op.Description == "" {
				t.Errorf("%s %s: summary %q, description %q", method, path, op.Summary, op.Description)
			}
			for _, code := range []string{"200", "400", "401", "403", "404", "409", "429"} {
				if op.Responses[code] == nil {
					t.Errorf("%s %s: no %s response", method, path, code)
				}
			}
		}
	}
}

// A browser pointed at the gateway, or at /docs/, lands on the reference.
func TestRootAndDocsSlashRedirectToDocs(t *testing.T) {
	_, addr := backend(t)
	url := startGateway(t, t, addr, 0)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/", "/docs/"} {
		resp, err := noFollow.Get(url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/docs" {
			t.Errorf("%s: %d to %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// An API call without credentials is a 401 with the Bearer challenge, from
// the gateway itself, whatever else is wrong with it.
func TestMissingCredentialsAre401(t *testing.T) {
	fake, addr := backend(t)
	url := startGateway(t, t, addr, 0)
	resp, body := do(t, http.MethodPost, url+"/v1/councils?nonsense=1", strings.NewReader(`{"colour":`), http.Header{"Authorization": {}})
	wantError(t, resp, body, http.StatusUnauthorized, codes.Unauthenticated)
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
	}
	if fake.createCount() != 0 {
		t.Error("the backend was called")
	}
}

// Callers without credentials are limited by address at the gateway: past
// the rate, 429 with Retry-After.
func TestAnonymousCallersAreLimitedByAddress(t *testing.T) {
	_, addr := backend(t)
	gw, err := gateway.New(context.Background(), gateway.Config{Addrs: everyAddr(addr),
		Logger: testkit.Logger(), AnonymousRate: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	statuses := map[int]int{}
	var retry string
	for range 10 {
		resp, _ := do(t, http.MethodGet, srv.URL+"/v1/councils/retail", nil, http.Header{"Authorization": {}})
		statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			retry = resp.Header.Get("Retry-After")
		}
	}
	if statuses[http.StatusUnauthorized] == 0 || statuses[http.StatusTooManyRequests] == 0 || retry == "" {
		t.Fatalf("statuses %v, Retry-After %q", statuses, retry)
	}
	// With credentials the address's anonymous budget does not matter.
	resp, _ := do(t, http.MethodGet, srv.URL+"/v1/councils/retail", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with credentials: %d", resp.StatusCode)
	}
}

// Security headers on every response; CORS only for the origins allowed.
func TestSecurityHeadersAndCORS(t *testing.T) {
	_, addr := backend(t)
	gw, err := gateway.New(context.Background(), gateway.Config{Addrs: everyAddr(addr),
		Logger: testkit.Logger(), CORSOrigins: []string{"https://portal.example.se"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	resp, _ := do(t, http.MethodGet, srv.URL+"/v1/councils/retail", nil, http.Header{"Origin": {"https://portal.example.se"}})
	h := resp.Header
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers: %v", h)
	}
	if h.Get("Server") != "" {
		t.Errorf("Server header %q", h.Get("Server"))
	}
	if h.Get("Access-Control-Allow-Origin") != "https://portal.example.se" {
		t.Errorf("allowed origin: %q", h.Get("Access-Control-Allow-Origin"))
	}
	resp, _ = do(t, http.MethodGet, srv.URL+"/v1/councils/retail", nil, http.Header{"Origin": {"https://evil.example"}})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS granted to another origin")
	}
	// Preflight.
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/v1/councils", nil)
	req.Header.Set("Origin", "https://portal.example.se")
	req.Header.Set("Access-Control-Request-Method", "POST")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != http.StatusNoContent || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	req.Header.Set("Origin", "https://evil.example")
	pre, _ = http.DefaultClient.Do(req)
	pre.Body.Close()
	if pre.StatusCode != http.StatusForbidden {
		t.Errorf("preflight from another origin: %d", pre.StatusCode)
	}
	// Without any allowed origin no CORS header is ever sent.
	plain := startGateway(t, t, addr, 0)
	resp, _ = do(t, http.MethodGet, plain+"/v1/councils/retail", nil, http.Header{"Origin": {"https://portal.example.se"}})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS without configuration")
	}
}

// The gateway serves HTTPS from certificate and key files, and says so
// with HSTS.
func TestServesTLS(t *testing.T) {
	_, addr := backend(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	tlsCfg, err := tlsx.ServerConfig(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), gateway.Config{Addrs: everyAddr(addr), Logger: testkit.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := gateway.NewHTTPServer(lis.Addr().String(), gw.Handler())
	go func() { _ = gateway.ServeMaybeTLS(srv, lis, tlsCfg) }()
	t.Cleanup(func() { _ = srv.Close() })
	pool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+lis.Addr().String()+"/v1/councils/retail", nil)
	req.Header.Set("Authorization", "Bearer x")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}
