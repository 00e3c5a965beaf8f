package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/demo"
	"github.com/kompetensnav/kompetensnav/services/platform/telemetry"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"go.opentelemetry.io/otel"
)

// -metrics-addr serves what the dashboard needs for Prometheus to scrape:
// RED per RPC (otelgrpc), the domain gauge of needs by state, consumer lag
// and dead letters of the event streams, and Redis command latency (the
// enrolment gauges and the dashboard's metrics: the test after this one).
func TestPrometheusEndpointServesREDAndDomainMetrics(t *testing.T) {
	addr := metricsAddr(t)
	a := start(t, testkit.Redis(t), false)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	c.ok("POST", "/v1/councils?councilId=fordon", council)
	c.ok("POST", "/v1/councils/fordon/needs?needId=drivlinor", needBody())
	c.ok("POST", "/v1/councils/fordon/needs?needId=svets", needBody())
	c.ok("POST", "/v1/councils/fordon/needs/svets:submit", map[string]any{})
	if r := c.do("POST", "/v1/councils/nosuch/needs?needId=x", needBody()); r.status != http.StatusNotFound {
		t.Fatalf("a need in a council that does not exist: %d %s", r.status, r.raw)
	}

	want := map[string]*regexp.Regexp{
		"RED: calls by method and code":  regexp.MustCompile(`(?m)^rpc_server_call_duration_seconds_count\{.*rpc_method="kompetensnav\.councils\.v1\.CouncilsService/CreateNeed",rpc_response_status_code="OK".*\} 2$`),
		"needs by state (draft)":         regexp.MustCompile(`(?m)^kn_councils_needs\{.*state="STATE_DRAFT".*\} 1$`),
		"needs by state (submitted)":     regexp.MustCompile(`(?m)^kn_councils_needs\{.*state="STATE_SUBMITTED".*\} 1$`),
		"consumer lag":                   regexp.MustCompile(`(?m)^kn_events_lag\{.*group="access".*stream="kn:\{councils\}:audit".*\} [0-9]+$`),
		"dead letters":                   regexp.MustCompile(`(?m)^kn_events_dead_letters\{.*\} [0-9]+$`),
		"RED: errors by code":            regexp.MustCompile(`(?m)^rpc_server_call_duration_seconds_count\{.*rpc_method="kompetensnav\.councils\.v1\.CouncilsService/CreateNeed",rpc_response_status_code="NOT_FOUND".*\} 1$`),
		"Redis latency (connection use)": regexp.MustCompile(`(?m)^db_client_connections_use_time_milliseconds_count\{.*\} [1-9]`),
	}
	scrape(t, addr, want)
}

// scrape reads /metrics at addr until every one of want matches (or 10 s
// have passed), and fails t for each that does not.
func scrape(t *testing.T, addr string, want map[string]*regexp.Regexp) {
	t.Helper()
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		missing := 0
		for _, re := range want {
			if !re.MatchString(body) {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for what, re := range want {
		if !re.MatchString(body) {
			t.Errorf("no %s (%s) in /metrics", what, re)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// metricsAddr sets up the Prometheus endpoint on a free port for the
// test's process.
func metricsAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	prev := otel.GetMeterProvider()
	stop, err := telemetry.Flags{MetricsAddr: &addr}.Setup(context.Background(), "kompetensnav-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop(context.Background()); otel.SetMeterProvider(prev) })
	return addr
}

// The enrolment service's domain gauges on the demo (16 enrolled and 4
// waitlisted on its open offering, 4 enrolled on its running course),
// following a withdrawal that promotes
// the head of the waitlist; and, with the demo's data behind every panel,
// every metric the chart's Grafana dashboard queries is one the process
// really exports (under the name Prometheus gives it).
func TestPrometheusEndpointServesEnrolmentGaugesAndEveryDashboardMetric(t *testing.T) {
	addr := metricsAddr(t)
	a := start(t, testkit.Redis(t), true)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	offering := regexp.QuoteMeta(demo.DemoOffering)
	gauges := func(enrolled, waitlisted, withdrawn int) map[string]*regexp.Regexp {
		return map[string]*regexp.Regexp{
			"enrolled":        regexp.MustCompile(fmt.Sprintf(`(?m)^kn_enrolment_enrolments\{.*state="STATE_ENROLLED".*\} %d$`, enrolled)),
			"waitlisted":      regexp.MustCompile(fmt.Sprintf(`(?m)^kn_enrolment_enrolments\{.*state="STATE_WAITLISTED".*\} %d$`, waitlisted)),
			"withdrawn":       regexp.MustCompile(fmt.Sprintf(`(?m)^kn_enrolment_enrolments\{.*state="STATE_WITHDRAWN".*\} %d$`, withdrawn)),
			"waitlist length": regexp.MustCompile(fmt.Sprintf(`(?m)^kn_enrolment_waitlist_length\{.*offering="%s".*\} %d$`, offering, waitlisted)),
		}
	}
	want := gauges(20, 4, 0)
	c.ok("GET", "/v1/councils", nil) // the gateway's own metric
	// Every metric the chart's Grafana dashboard queries must be one the
	// process really exports (under the name Prometheus gives it).
	dash, err := os.ReadFile("../../../../charts/kompetensnav/files/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	queried := regexp.MustCompile(`\b((?:rpc|db|kn|http)_[a-z_]+)\{`).FindAllStringSubmatch(string(dash), -1)
	if len(queried) < 10 {
		t.Fatalf("only %d metric queries found in the dashboard", len(queried))
	}
	for _, m := range queried {
		want["the dashboard's "+m[1]] = regexp.MustCompile(`(?m)^` + m[1] + `\{`)
	}
	scrape(t, addr, want)

	c.ok("POST", "/v1/"+demo.DemoOffering+"/enrolments/demo-01:withdraw", map[string]any{})
	scrape(t, addr, gauges(20, 3, 1))
}
