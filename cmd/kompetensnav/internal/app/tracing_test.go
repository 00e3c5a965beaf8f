package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// One request, one trace: the gateway's HTTP span, its gRPC call to the
// councils service, councils' server span, under it councils asking the
// access service about the caller's API key (client span, access's server
// span, access reading Redis) and councils' own write to Redis. The tree is
// checked edge by edge from the spans an in-memory exporter recorded.
func TestOneTraceFromGatewayThroughTwoServicesToRedis(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	// As telemetry.Setup does in the binaries; before anything is built,
	// since the gRPC, HTTP and Redis instrumentation take it then.
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
		_ = tp.Shutdown(context.Background())
	})

	a := start(t, testkit.Redis(t), false)
	staff := client{t, "http://" + a.HTTPAddr, a.BootstrapKey}
	// An API key, so councils must ask the access service who is calling
	// (the bootstrap key it would check by itself).
	created := staff.ok("POST", "/v1/apiKeys?apiKeyId=kansli", map[string]any{"displayName": "Kansliet", "role": "ROLE_STAFF"})
	key, _ := created["secret"].(string)
	if key == "" {
		t.Fatalf("no secret in %v", created)
	}
	exp.Reset()

	const traceID = "5bf92f3577b34da6a3ce929d0e0e4737"
	req, _ := http.NewRequest("POST", "http://"+a.HTTPAddr+"/v1/councils?councilId=fordon",
		strings.NewReader(`{"displayName":"Fordonsrådet","sector":"SECTOR_VEHICLE_INDUSTRY"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: %d", resp.StatusCode)
	}

	const (
		createCouncil = "kompetensnav.councils.v1.CouncilsService/CreateCouncil"
		getPrincipal  = "kompetensnav.access.v1.AccessService/GetPrincipal"
	)
	var tree spanTree
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Server spans end after the client has its answer: poll.
		tree = newSpanTree(exp.GetSpans(), traceID)
		if tree.find(trace.SpanKindServer, getPrincipal, trace.SpanID{}) != nil && tree.find(trace.SpanKindServer, createCouncil, trace.SpanID{}) != nil &&
			tree.root() != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	root := tree.root()
	if root == nil || root.SpanKind != trace.SpanKindServer || !strings.HasPrefix(root.Name, "POST /v1/") {
		t.Fatalf("no gateway HTTP span at the root of the trace:\n%s", tree)
	}
	gwCall := tree.child(t, root, trace.SpanKindClient, createCouncil)
	councils := tree.child(t, gwCall, trace.SpanKindServer, createCouncil)
	askAccess := tree.child(t, councils, trace.SpanKindClient, getPrincipal)
	access := tree.child(t, askAccess, trace.SpanKindServer, getPrincipal)
	if tree.redisUnder(access) == 0 {
		t.Errorf("no Redis span under the access service's GetPrincipal:\n%s", tree)
	}
	if tree.redisUnder(councils) == 0 {
		t.Errorf("no Redis span under the councils service's CreateCouncil:\n%s", tree)
	}
	if t.Failed() {
		return
	}
	t.Logf("the trace:\n%s", tree)
}

type spanTree struct {
	spans []tracetest.SpanStub
	byID  map[trace.SpanID]*tracetest.SpanStub
}

func newSpanTree(all tracetest.SpanStubs, traceID string) spanTree {
	t := spanTree{byID: map[trace.SpanID]*tracetest.SpanStub{}}
	for _, s := range all {
		if s.SpanContext.TraceID().String() == traceID {
			t.spans = append(t.spans, s)
		}
	}
	for i := range t.spans {
		t.byID[t.spans[i].SpanContext.SpanID()] = &t.spans[i]
	}
	return t
}

// root is the span whose parent is not in the trace's recorded spans (the
// caller's, given by traceparent).
func (t spanTree) root() *tracetest.SpanStub {
	for i, s := range t.spans {
		if _, ok := t.byID[s.Parent.SpanID()]; !ok {
			return &t.spans[i]
		}
	}
	return nil
}

func (t spanTree) find(kind trace.SpanKind, name string, parent trace.SpanID) *tracetest.SpanStub {
	for i, s := range t.spans {
		if s.SpanKind == kind && s.Name == name && (!parent.IsValid() || s.Parent.SpanID() == parent) {
			return &t.spans[i]
		}
	}
	return nil
}

// child finds parent's child span of kind named name, or fails the test.
func (t spanTree) child(tt *testing.T, parent *tracetest.SpanStub, kind trace.SpanKind, name string) *tracetest.SpanStub {
	tt.Helper()
	c := t.find(kind, name, parent.SpanContext.SpanID())
	if c == nil {
		tt.Fatalf("no %v span %q under %q:\n%s", kind, name, parent.Name, t)
	}
	return c
}

// redisUnder counts the Redis client spans directly under parent.
func (t spanTree) redisUnder(parent *tracetest.SpanStub) int {
	n := 0
	for _, s := range t.spans {
		if s.Parent.SpanID() != parent.SpanContext.SpanID() || s.SpanKind != trace.SpanKindClient {
			continue
		}
		for _, a := range s.Attributes {
			if a.Key == "db.system" && a.Value.AsString() == "redis" || a.Key == "db.system.name" && a.Value.AsString() == "redis" {
				n++
			}
		}
	}
	return n
}

func (t spanTree) String() string {
	var b strings.Builder
	var walk func(id trace.SpanID, depth int)
	walk = func(id trace.SpanID, depth int) {
		for _, s := range t.spans {
			if s.Parent.SpanID() == id {
				fmt.Fprintf(&b, "%s%s (%v)\n", strings.Repeat("  ", depth), s.Name, s.SpanKind)
				walk(s.SpanContext.SpanID(), depth+1)
			}
		}
	}
	if r := t.root(); r != nil {
		fmt.Fprintf(&b, "%s (%v)\n", r.Name, r.SpanKind)
		walk(r.SpanContext.SpanID(), 1)
	}
	return b.String()
}
