package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// ReadyTimeout bounds each backend's health check in /readyz. The checks
// run in parallel, so /readyz answers within a Kubernetes probe's default
// one-second timeout even when a backend hangs.
const ReadyTimeout = 800 * time.Millisecond

// healthz is liveness: it says only that the process serves HTTP, so a
// backend outage never gets the gateway restarted.
func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// Drain makes /readyz answer 503 from now on while every other route goes
// on being served: the start of a shutdown, so load balancers stop sending
// before the listener closes.
func (g *Gateway) Drain() { g.draining.Store(true) }

// readyz is readiness: 200 when every backend answers SERVING for its
// service, else 503 naming each backend that does not and why, so traffic
// goes only to a gateway that can serve all of the API; 503 as well once
// the gateway drains.
func (g *Gateway) readyz(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "draining"})
		return
	}
	var (
		mu         sync.Mutex
		wg         sync.WaitGroup
		notServing = map[string]string{}
	)
	for _, b := range g.backends {
		wg.Go(func() {
			if reason := b.check(r.Context()); reason != "" {
				mu.Lock()
				notServing[b.Name] = reason
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(notServing) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "notServing": notServing})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// check returns "" when the backend is SERVING, else why not.
func (b backend) check(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(b.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: b.HealthName})
	if err != nil {
		st := status.Convert(err)
		return st.Code().String() + ": " + st.Message()
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return s.String()
	}
	return ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
