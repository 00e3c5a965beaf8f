package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/app"
	"github.com/kompetensnav/kompetensnav/gateway"
	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func startOn(t *testing.T, srv *testkit.RedisServer) *app.App {
	t.Helper()
	a, err := app.Start(context.Background(), app.Config{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Redis: &redis.UniversalOptions{Addrs: []string{srv.Addr}},
		Logger: testkit.Logger(), Gateway: gateway.Config{AnonymousRate: 10_000},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(5 * time.Second) })
	return a
}

func grpcHealth(t *testing.T, addr, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health %q: %v", service, err)
	}
	return r.GetStatus()
}

// While Redis is down the processes stay ready (a readiness that followed
// Redis would pull every replica of every service out of its Service at
// once, turning a storage outage into 503s for reads of health and docs
// too, and restarts into a thundering herd); writes answer 503 promptly,
// and the service recovers by itself when Redis is back.
func TestRedisDownKeepsReadinessAndWritesAre503UntilItReturns(t *testing.T) {
	srv := testkit.StartRedis(t)
	a := startOn(t, srv)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	c.ok("POST", "/v1/councils?councilId=fordon", council)

	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if r := c.do("GET", "/readyz", nil); r.status != http.StatusOK {
		t.Fatalf("/readyz with Redis down: %d %s, want 200", r.status, r.raw)
	}
	if s := grpcHealth(t, a.GRPCAddr, "kompetensnav.councils.v1.CouncilsService"); s != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health with Redis down: %v, want SERVING", s)
	}
	if r := c.do("POST", "/v1/councils?councilId=handel", council); r.status != http.StatusServiceUnavailable {
		t.Fatalf("a write with Redis down: %d %s, want 503", r.status, r.raw)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := c.do("POST", "/v1/councils?councilId=handel", council)
		if r.status == http.StatusOK {
			break
		}
		if r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("a write after Redis returned: %d %s", r.status, r.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// On the stop signal the all-in-one first drains: /readyz 503 and gRPC
// health NOT_SERVING while calls are still answered; then it stops.
func TestDrainReportsNotReadyWhileServing(t *testing.T) {
	a := startOn(t, testkit.StartRedis(t))
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	drain := make(chan struct{})
	ctx, cancel := context.WithCancel(process.WithDraining(context.Background(), drain))
	waited := make(chan error, 1)
	go func() { waited <- a.Wait(ctx, 5*time.Second) }()
	close(drain)
	deadline := time.Now().Add(5 * time.Second)
	for c.do("GET", "/readyz", nil).status != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 503 after the drain began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := grpcHealth(t, a.GRPCAddr, ""); s != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("gRPC health while draining: %v", s)
	}
	c.ok("POST", "/v1/councils?councilId=fordon", council)
	c.ok("GET", "/v1/councils/fordon", nil)
	cancel()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the context ended")
	}
}

// With Redis hung (the process stopped: connections open, nothing
// answered) the shutdown still ends by the grace.
func TestShutdownEndsByTheGraceWithRedisHung(t *testing.T) {
	srv := testkit.StartRedis(t)
	a := startOn(t, srv)
	c := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	c.ok("POST", "/v1/councils?councilId=fordon", council)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Resume() }()
	// A write in flight, hanging on Redis.
	go func() {
		req, _ := http.NewRequest("POST", c.base+"/v1/councils?councilId=handel", strings.NewReader(`{"displayName":"Handel","sector":"SECTOR_RETAIL"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(200 * time.Millisecond)
	const grace = 2 * time.Second
	stopped := make(chan struct{})
	go func() { a.Stop(grace); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(grace + time.Second):
		t.Fatalf("Stop still running %s after it began (grace %s)", grace+time.Second, grace)
	}
}
