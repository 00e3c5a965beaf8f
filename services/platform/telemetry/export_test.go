package telemetry_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/telemetry"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// collector is a minimal OTLP/gRPC trace receiver: what an OpenTelemetry
// Collector would get from us.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu       sync.Mutex
	services []string
	spans    []string
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				c.services = append(c.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, s.GetName())
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func TestSetupExportsSpansOverOTLPWhenEndpointSet(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{}
	g := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(g, col)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	// Metrics go to the same endpoint; this receiver does not take them, and
	// Setup must not fail because of that.
	shutdown, err := telemetry.Setup(context.Background(), "kompetensnav-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { otel.SetTracerProvider(trace.NewTracerProvider()) })
	_, span := otel.Tracer("test").Start(context.Background(), "ApproveNeed")
	span.End()
	_ = shutdown(context.Background()) // flushes; the metric export error is expected here

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.spans) != 1 || col.spans[0] != "ApproveNeed" {
		t.Fatalf("collector got spans %v", col.spans)
	}
	if len(col.services) == 0 || col.services[0] != "kompetensnav-test" {
		t.Fatalf("collector got service names %v", col.services)
	}
}
