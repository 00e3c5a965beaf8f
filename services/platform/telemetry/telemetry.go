// Package telemetry sets up OpenTelemetry tracing and metrics and the slog
// logger that carries trace ids, once per process.
package telemetry

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Flags are the telemetry settings of a binary.
type Flags struct {
	// MetricsAddr, when set, serves the metrics for Prometheus to scrape
	// at http://<addr>/metrics (besides OTLP, when that is configured).
	MetricsAddr *string
}

// RegisterFlags defines -metrics-addr (KN_METRICS_ADDR) on fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	return &Flags{MetricsAddr: config.String(fs, "metrics-addr", "",
		"serve Prometheus metrics on this host:port at /metrics (empty: no endpoint; OTLP export is set by OTEL_EXPORTER_OTLP_ENDPOINT)")}
}

// Setup installs the global tracer and meter providers and propagators.
// Spans and metrics (RPC latency from otelgrpc, Redis pool and command
// metrics from redisotel) are exported over OTLP/gRPC only when
// OTEL_EXPORTER_OTLP_ENDPOINT (or the per-signal variant) is set; the
// exporters read the other standard OTEL_* variables themselves. Otherwise
// spans are still created, so trace ids appear in logs, but go nowhere. The
// returned function flushes and stops both providers.
func Setup(ctx context.Context, serviceName string) (func(context.Context) error, error) {
	return Flags{}.Setup(ctx, serviceName)
}

// Setup is the package's Setup, plus the Prometheus endpoint when
// f.MetricsAddr is set: metrics then exist even without OTLP.
func (f Flags) Setup(ctx context.Context, serviceName string) (func(context.Context) error, error) {
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(
		semconv.SchemaURL, semconv.ServiceName(serviceName)))
	if err != nil {
		// A schema URL conflict between the SDK default and ours is harmless.
		res = resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(serviceName))
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	shutdowns := []func(context.Context) error{tp.Shutdown}
	shutdown := func(ctx context.Context) error {
		var errs []error
		for i := len(shutdowns) - 1; i >= 0; i-- {
			errs = append(errs, shutdowns[i](ctx))
		}
		return errors.Join(errs...)
	}
	var readers []sdkmetric.Option
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != "" {
		exp, err := otlpmetricgrpc.New(ctx)
		if err != nil {
			_ = shutdown(ctx)
			return nil, err
		}
		readers = append(readers, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	if f.MetricsAddr != nil && *f.MetricsAddr != "" {
		reader, stop, err := servePrometheus(*f.MetricsAddr)
		if err != nil {
			_ = shutdown(ctx)
			return nil, err
		}
		shutdowns = append(shutdowns, stop)
		readers = append(readers, sdkmetric.WithReader(reader))
	}
	if len(readers) > 0 {
		mp := sdkmetric.NewMeterProvider(append(readers, sdkmetric.WithResource(res))...)
		otel.SetMeterProvider(mp)
		shutdowns = append(shutdowns, mp.Shutdown)
	}
	return shutdown, nil
}

// servePrometheus serves a registry fed by the OpenTelemetry Prometheus
// exporter (plus the Go runtime and process collectors) at addr/metrics.
func servePrometheus(addr string) (sdkmetric.Reader, func(context.Context) error, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("-metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	slog.Info("serving Prometheus metrics", "addr", "http://"+lis.Addr().String()+"/metrics")
	return exp, srv.Shutdown, nil
}

// NewLogger returns a slog logger writing JSON (format "json") or text to
// stderr at the given level ("debug", "info", "warn", "error"), adding the
// trace and span id of the context to every record logged with one.
func NewLogger(format, level string) (*slog.Logger, error) {
	return NewLoggerTo(os.Stderr, format, level)
}

// NewLoggerTo is NewLogger writing to w.
func NewLoggerTo(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, errors.New("log level must be debug, info, warn or error")
	}
	ho := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, ho)
	case "text", "":
		h = slog.NewTextHandler(w, ho)
	default:
		return nil, errors.New("log format must be json or text")
	}
	return slog.New(traceHandler{h}), nil
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
