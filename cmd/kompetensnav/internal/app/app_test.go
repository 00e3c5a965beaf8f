package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/app"
	"github.com/kompetensnav/kompetensnav/gateway"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// start runs the all-in-one on loopback ports against rdb (nil: embedded).
func start(t *testing.T, rdb redis.UniversalClient, demo bool) *app.App {
	t.Helper()
	opts := &redis.UniversalOptions{}
	if rdb != nil {
		opts = testkit.Options(t, rdb)
	}
	a, err := app.Start(context.Background(), app.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Redis: opts, Demo: demo, Logger: testkit.Logger(),
		Gateway: gateway.Config{AnonymousRate: 10_000},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(5 * time.Second) })
	return a
}

type client struct {
	t    *testing.T
	base string
	key  string // sent as a bearer token; "" sends none
}

type reply struct {
	status int
	body   map[string]any
	raw    string
}

func (c client) do(method, path string, body any) reply {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (c client) ok(method, path string, body any) map[string]any {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != http.StatusOK {
		c.t.Fatalf("%s %s: %d %s", method, path, r.status, r.raw)
	}
	return r.body
}

// violated returns the fields a 400's BadRequest detail names.
func violated(r reply) []string {
	var out []string
	details, _ := r.body["details"].([]any)
	for _, d := range details {
		dm, _ := d.(map[string]any)
		fvs, _ := dm["fieldViolations"].([]any)
		for _, fv := range fvs {
			out = append(out, fv.(map[string]any)["field"].(string))
		}
	}
	return out
}

var council = map[string]any{
	"displayName":         "Kompetensrådet för fordonsindustrin",
	"sector":              "SECTOR_VEHICLE_INDUSTRY",
	"memberOrganisations": []string{"IF Metall", "Teknikföretagen"},
	"contactEmail":        "kansli@example.org",
}

func needBody() map[string]any {
	return map[string]any{
		"title":          "Service av elektrifierade drivlinor",
		"headcount":      120,
		"targetGroups":   []string{"TARGET_GROUP_EMPLOYED_AT_RISK", "TARGET_GROUP_NOTIFIED"},
		"municipalities": []string{"1480", "1440"},
		"neededBy":       map[string]any{"year": 2099, "month": 9, "day": 1},
		"rationale":      "Elektrifieringen ändrar verkstädernas arbete",
	}
}

func TestNeedLifecycleOverHTTP(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, false)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}

	got := c.ok("POST", "/v1/councils?councilId=fordon", council)
	if got["name"] != "councils/fordon" || len(got["municipalities"].([]any)) != 13 {
		t.Fatalf("council %v", got)
	}
	n := c.ok("POST", "/v1/councils/fordon/needs?needId=elektrifiering", needBody())
	if n["name"] != "councils/fordon/needs/elektrifiering" || n["state"] != "STATE_DRAFT" || n["priority"] != "PRIORITY_MEDIUM" {
		t.Fatalf("need %v", n)
	}
	base := "/v1/councils/fordon/needs/elektrifiering"

	// PATCH of a draft, mask derived from the body.
	n = c.ok("PATCH", base, map[string]any{"headcount": 150, "etag": n["etag"]})
	if n["headcount"] != float64(150) || n["title"] != "Service av elektrifierade drivlinor" {
		t.Fatalf("patched %v", n)
	}

	r := c.do("POST", base+":approve", map[string]any{})
	if r.status != http.StatusBadRequest || !strings.Contains(r.raw, "STATE_DRAFT") {
		t.Fatalf("approve of a draft: %d %s", r.status, r.raw)
	}
	for _, step := range []struct{ verb, state string }{
		{"submit", "STATE_SUBMITTED"},
		{"approve", "STATE_APPROVED"},
		{"startProcurement", "STATE_IN_PROCUREMENT"},
		{"fulfil", "STATE_FULFILLED"},
		{"close", "STATE_CLOSED"},
	} {
		n = c.ok("POST", base+":"+step.verb, map[string]any{})
		if n["state"] != step.state {
			t.Fatalf(":%s gave %v", step.verb, n["state"])
		}
	}
	if n = c.ok("GET", base, nil); n["state"] != "STATE_CLOSED" || n["submitTime"] == nil {
		t.Fatalf("get %v", n)
	}

	list := c.ok("GET", "/v1/councils/-/needs?filter="+url.QueryEscape("state = STATE_CLOSED"), nil)
	if needs, _ := list["needs"].([]any); len(needs) != 1 {
		t.Fatalf("list %v", list)
	}

	// Reject needs a reason; the error names the field.
	c.ok("POST", "/v1/councils/fordon/needs?needId=andra", needBody())
	c.ok("POST", "/v1/councils/fordon/needs/andra:submit", map[string]any{})
	r = c.do("POST", "/v1/councils/fordon/needs/andra:reject", map[string]any{})
	if r.status != http.StatusBadRequest || !slices.Contains(violated(r), "reason") {
		t.Fatalf("reject without reason: %d %s", r.status, r.raw)
	}
	c.ok("POST", "/v1/councils/fordon/needs/andra:reject", map[string]any{"reason": "Täcks av befintligt utbud"})

	// A stale etag is a 409.
	cur := c.ok("GET", "/v1/councils/fordon", nil)
	c.ok("PATCH", "/v1/councils/fordon", map[string]any{"displayName": "Fordonsrådet", "etag": cur["etag"]})
	r = c.do("PATCH", "/v1/councils/fordon", map[string]any{"displayName": "Förlorad", "etag": cur["etag"]})
	if r.status != http.StatusConflict {
		t.Fatalf("stale etag: %d %s", r.status, r.raw)
	}

	if r := c.do("DELETE", "/v1/councils/fordon", nil); r.status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	if r := c.do("GET", "/v1/councils/fordon", nil); r.status != http.StatusNotFound {
		t.Fatalf("after delete: %d", r.status)
	}
}

func TestBadInputOverHTTPIsA400NamingTheFieldAndWritesNothing(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, false)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	c.ok("POST", "/v1/councils?councilId=fordon", council)

	with := func(k string, v any) map[string]any {
		b := needBody()
		b[k] = v
		return b
	}
	cases := []struct {
		name, method, path string
		body               any
		field              string // its JSON path
	}{
		{"empty display name", "POST", "/v1/councils", map[string]any{"displayName": "", "sector": "SECTOR_RETAIL"}, "council.displayName"},
		{"no sector", "POST", "/v1/councils", map[string]any{"displayName": "Handelsrådet"}, "council.sector"},
		{"bad email", "POST", "/v1/councils", map[string]any{"displayName": "H", "sector": "SECTOR_RETAIL", "contactEmail": "nope"}, "council.contactEmail"},
		{"unknown municipality", "POST", "/v1/councils", map[string]any{"displayName": "H", "sector": "SECTOR_RETAIL", "municipalities": []string{"1480", "1499", "1234"}}, "council.municipalities[2]"},
		{"bad council id", "POST", "/v1/councils?councilId=Handel!", map[string]any{"displayName": "H", "sector": "SECTOR_RETAIL"}, "councilId"},
		{"headcount 0", "POST", "/v1/councils/fordon/needs", with("headcount", 0), "need.headcount"},
		{"headcount too big", "POST", "/v1/councils/fordon/needs", with("headcount", 10001), "need.headcount"},
		{"no target group", "POST", "/v1/councils/fordon/needs", with("targetGroups", []string{}), "need.targetGroups"},
		{"municipality outside council", "POST", "/v1/councils/fordon/needs", with("municipalities", []string{"0180"}), "need.municipalities[0]"},
		{"impossible date", "POST", "/v1/councils/fordon/needs", with("neededBy", map[string]any{"year": 2027, "month": 13, "day": 1}), "need.neededBy"},
		{"title too long", "POST", "/v1/councils/fordon/needs", with("title", strings.Repeat("a", 201)), "need.title"},
		{"bad request id", "POST", "/v1/councils/fordon/needs?requestId=" + url.QueryEscape("två ord"), needBody(), "requestId"},
		{"page size negative", "GET", "/v1/councils/-/needs?pageSize=-5", nil, "pageSize"},
		{"bad filter", "GET", "/v1/councils/-/needs?filter=" + url.QueryEscape("state = NOPE"), nil, "filter"},
		{"bad order", "GET", "/v1/councils?orderBy=sector", nil, "orderBy"},
		{"tampered page token", "GET", "/v1/councils?pageToken=eyJzIjoiIn0.AAAA", nil, "pageToken"},
		{"unknown JSON field", "POST", "/v1/councils", map[string]any{"displayName": "H", "sector": "SECTOR_RETAIL", "colour": "red"}, "council.colour"},
		{"malformed JSON", "POST", "/v1/councils", `{"displayName": `, "council.displayName"},
		{"enum name unknown", "POST", "/v1/councils", map[string]any{"displayName": "H", "sector": "SECTOR_MINING"}, "council.sector"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			collectAudit(t, a, rdb) // the collector writes in the background; let it finish
			before, _ := rdb.DBSize(ctx).Result()
			events, _ := rdb.XLen(ctx, "kn:{councils}:events").Result()
			r := c.do(tc.method, tc.path, tc.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("want 400, got %d %s", r.status, r.raw)
			}
			if r.body["code"] != float64(3) || r.body["message"] == "" {
				t.Fatalf("error body %s", r.raw)
			}
			if tc.field != "" && !slices.Contains(violated(r), tc.field) {
				t.Fatalf("want field %q in %v (%s)", tc.field, violated(r), r.raw)
			}
			after, _ := rdb.DBSize(ctx).Result()
			evAfter, _ := rdb.XLen(ctx, "kn:{councils}:events").Result()
			if after != before || evAfter != events {
				t.Fatalf("rejected request wrote: keys %d→%d, events %d→%d", before, after, events, evAfter)
			}
		})
	}
}

func TestIdempotentCreateAndPaginationOverHTTP(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, false)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	c.ok("POST", "/v1/councils?councilId=teknik", map[string]any{"displayName": "Teknikrådet", "sector": "SECTOR_TECH_INDUSTRY"})

	// Partner systems retry: 20 concurrent posts with one requestId make one need.
	var wg sync.WaitGroup
	names := make([]string, 20)
	for i := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.do("POST", "/v1/councils/teknik/needs?requestId=trr-2026-118", needBody())
			if r.status != http.StatusOK {
				t.Errorf("%d %s", r.status, r.raw)
				return
			}
			names[i], _ = r.body["name"].(string)
		}()
	}
	wg.Wait()
	for _, n := range names {
		if n != names[0] || n == "" {
			t.Fatalf("retries returned %v", names)
		}
	}
	for i := range 59 {
		c.ok("POST", fmt.Sprintf("/v1/councils/teknik/needs?needId=n%02d", i), needBody())
	}
	seen := map[string]bool{}
	token := ""
	for {
		path := "/v1/councils/teknik/needs?pageSize=25"
		if token != "" {
			path += "&pageToken=" + url.QueryEscape(token)
		}
		page := c.ok("GET", path, nil)
		for _, n := range page["needs"].([]any) {
			name := n.(map[string]any)["name"].(string)
			if seen[name] {
				t.Fatalf("%s on two pages", name)
			}
			seen[name] = true
		}
		if token, _ = page["nextPageToken"].(string); token == "" {
			break
		}
	}
	if len(seen) != 60 {
		t.Fatalf("%d needs listed, want 60", len(seen))
	}
}

func TestEmbeddedDemoAndGRPCDiscovery(t *testing.T) {
	a := start(t, nil, true)
	if !a.Embedded {
		t.Fatal("no Redis address should mean the embedded store")
	}
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	list := c.ok("GET", "/v1/councils", nil)
	if cs, _ := list["councils"].([]any); len(cs) != 5 {
		t.Fatalf("demo councils: %v", list)
	}
	approved := c.ok("GET", "/v1/councils/-/needs?filter="+url.QueryEscape("state = STATE_APPROVED"), nil)
	if ns, _ := approved["needs"].([]any); len(ns) != 1 {
		t.Fatalf("demo approved needs: %v", approved)
	}
	suppliers := c.ok("GET", "/v1/companies?filter="+url.QueryEscape(`council = "councils/fordon"`), nil)
	if cs, _ := suppliers["companies"].([]any); len(cs) != 3 {
		t.Fatalf("demo vehicle companies: %v", suppliers)
	}
	if r := c.do("GET", "/readyz", nil); r.status != http.StatusOK {
		t.Fatalf("readyz %d %s", r.status, r.raw)
	}
	if r := c.do("GET", "/openapi.json", nil); r.status != http.StatusOK || r.body["paths"] == nil {
		t.Fatalf("openapi %d", r.status)
	}

	// What `grpcurl -plaintext <grpc> list` shows: the service, health, reflection.
	conn, err := grpc.NewClient(a.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	for _, want := range []string{"kompetensnav.councils.v1.CouncilsService", "kompetensnav.companies.v1.CompaniesService",
		"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(services, want) {
			t.Fatalf("reflection lists %v, missing %s", services, want)
		}
	}
	h, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "kompetensnav.councils.v1.CouncilsService"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health %v %v", h, err)
	}
}

func TestDemoLoadsTwiceWithoutDuplicates(t *testing.T) {
	rdb := testkit.Redis(t)
	a := start(t, rdb, true)
	a.Stop(5 * time.Second)
	b := start(t, rdb, true)
	c := client{t, "http://" + b.HTTPAddr, b.BootstrapKey}
	if cs, _ := c.ok("GET", "/v1/councils", nil)["councils"].([]any); len(cs) != 5 {
		t.Fatalf("%d councils after loading the demo twice", len(cs))
	}
	if ns, _ := c.ok("GET", "/v1/councils/-/needs", nil)["needs"].([]any); len(ns) != 3 {
		t.Fatalf("%d needs after loading the demo twice", len(ns))
	}
	if cs, _ := c.ok("GET", "/v1/companies", nil)["companies"].([]any); len(cs) != 5 {
		t.Fatalf("%d companies after loading the demo twice", len(cs))
	}
	if ns, _ := c.ok("GET", "/v1/companies/-/notices", nil)["notices"].([]any); len(ns) != 5 {
		t.Fatalf("%d notices after loading the demo twice", len(ns))
	}
	if ss, _ := c.ok("GET", "/v1/companies/torslanda-drivlina/coachingSessions", nil)["coachingSessions"].([]any); len(ss) != 3 {
		t.Fatalf("%d coaching sessions after loading the demo twice", len(ss))
	}
}

// A wrong state is FAILED_PRECONDITION (HTTP 400) with the
// google.rpc.PreconditionFailure the API conventions promise, naming the
// resource, for programs to act on.
func TestWrongStateCarriesPreconditionFailureOverHTTP(t *testing.T) {
	a := start(t, testkit.Redis(t), false)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	c.ok("POST", "/v1/councils?councilId=fordon", council)
	c.ok("POST", "/v1/councils/fordon/needs?needId=elektrifiering", needBody())
	r := c.do("DELETE", "/v1/councils/fordon", nil)
	if r.status != http.StatusBadRequest || r.body["code"] != float64(9) {
		t.Fatalf("delete of a council with an open need: %d %s", r.status, r.raw)
	}
	details, _ := r.body["details"].([]any)
	for _, d := range details {
		dm, _ := d.(map[string]any)
		if dm["@type"] != "type.googleapis.com/google.rpc.PreconditionFailure" {
			continue
		}
		vs, _ := dm["violations"].([]any)
		if len(vs) == 1 {
			v := vs[0].(map[string]any)
			if v["type"] == "STATE" && v["subject"] == "councils/fordon" && v["description"] == r.body["message"] {
				return
			}
		}
	}
	t.Fatalf("no PreconditionFailure about councils/fordon: %s", r.raw)
}
