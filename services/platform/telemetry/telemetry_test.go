package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/telemetry"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestNewLoggerRejectsBadSettings(t *testing.T) {
	for _, c := range []struct{ format, level string }{
		{"json", "verbose"},
		{"json", ""},
		{"text", "loud"},
		{"xml", "info"},
		{"JSON ", "info"},
	} {
		if _, err := telemetry.NewLoggerTo(io.Discard, c.format, c.level); err == nil {
			t.Errorf("format %q, level %q accepted", c.format, c.level)
		}
		if _, err := telemetry.NewLogger(c.format, c.level); err == nil {
			t.Errorf("NewLogger: format %q, level %q accepted", c.format, c.level)
		}
	}
	for _, c := range []struct{ format, level string }{
		{"json", "debug"}, {"json", "info"}, {"text", "warn"}, {"", "error"}, {"text", "WARN"},
	} {
		if _, err := telemetry.NewLoggerTo(io.Discard, c.format, c.level); err != nil {
			t.Errorf("format %q, level %q: %v", c.format, c.level, err)
		}
	}
}

func TestLoggerLevel(t *testing.T) {
	var buf bytes.Buffer
	log, err := telemetry.NewLoggerTo(&buf, "text", "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("quiet")
	log.Warn("loud")
	if out := buf.String(); strings.Contains(out, "quiet") || !strings.Contains(out, "loud") {
		t.Fatalf("warn-level log wrote:\n%s", out)
	}
}

// span starts a span from a real SDK tracer provider, so its ids are valid.
func span(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, s := tp.Tracer("test").Start(context.Background(), "call")
	t.Cleanup(func() { s.End() })
	if !s.SpanContext().IsValid() {
		t.Fatal("the SDK made an invalid span")
	}
	return ctx, s.SpanContext()
}

func jsonLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogLineCarriesTraceID(t *testing.T) {
	ctx, sc := span(t)
	var buf bytes.Buffer
	log, err := telemetry.NewLoggerTo(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.InfoContext(ctx, "with span")
	log.With("service", "councils").InfoContext(ctx, "with attrs")
	log.InfoContext(context.Background(), "without span")
	log.Info("no context")

	lines := jsonLines(t, &buf)
	if len(lines) != 4 {
		t.Fatalf("%d log lines, want 4:\n%s", len(lines), buf.String())
	}
	for _, l := range lines[:2] {
		if l["trace_id"] != sc.TraceID().String() || l["span_id"] != sc.SpanID().String() {
			t.Errorf("%q: trace_id %v span_id %v, want %s %s", l["msg"], l["trace_id"], l["span_id"], sc.TraceID(), sc.SpanID())
		}
	}
	if lines[1]["service"] != "councils" {
		t.Errorf("With lost its attribute: %v", lines[1])
	}
	for _, l := range lines[2:] {
		if _, ok := l["trace_id"]; ok {
			t.Errorf("%q has a trace_id without a span: %v", l["msg"], l)
		}
	}
}

func TestTextLogLineCarriesTraceID(t *testing.T) {
	ctx, sc := span(t)
	var buf bytes.Buffer
	log, err := telemetry.NewLoggerTo(&buf, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.InfoContext(ctx, "hello")
	if out := buf.String(); !strings.Contains(out, "trace_id="+sc.TraceID().String()) {
		t.Fatalf("text line lacks the trace id %s:\n%s", sc.TraceID(), out)
	}
}

func TestSetupWithoutExporterStillMakesTraceIDs(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	shutdown, err := telemetry.Setup(context.Background(), "councils")
	if err != nil {
		t.Fatal(err)
	}
	_, s := otel.Tracer("test").Start(context.Background(), "call")
	s.End()
	if !s.SpanContext().IsValid() {
		t.Fatal("after Setup spans have no trace id, so logs would carry none")
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
