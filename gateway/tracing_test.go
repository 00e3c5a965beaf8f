package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// One trace runs from the HTTP caller through the gateway into the backend,
// and the gateway's span is named after the route, not the resource.
func TestTracePropagatesToBackend(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	// What telemetry.Setup installs in the binaries; set before the
	// gateway and backend are built, as their handlers pick it up then.
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
		_ = tp.Shutdown(t.Context())
	})

	_, addr := backend(t)
	url := startGateway(t, t, addr, 0)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp, body := do(t, http.MethodGet, url+"/v1/councils/retail", nil,
		http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}

	// The backend's server span ends after the client already has its
	// answer, so the recorder is polled until both spans are in or a
	// generous deadline passes.
	var gatewaySpan, backendSpan bool
	deadline := time.Now().Add(10 * time.Second)
	for {
		gatewaySpan, backendSpan = false, false
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID().String() != traceID {
				continue
			}
			switch {
			case s.SpanKind() == trace.SpanKindServer && s.Name() == "GET /v1/{name=councils/*}":
				gatewaySpan = true
			case s.SpanKind() == trace.SpanKindServer && s.Name() == "kompetensnav.councils.v1.CouncilsService/GetCouncil":
				backendSpan = true
			}
		}
		if (gatewaySpan && backendSpan) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !gatewaySpan || !backendSpan {
		for _, s := range rec.Ended() {
			t.Logf("span %q kind %v trace %s", s.Name(), s.SpanKind(), s.SpanContext().TraceID())
		}
		t.Errorf("in the caller's trace: gateway span %v, backend span %v", gatewaySpan, backendSpan)
	}
}
