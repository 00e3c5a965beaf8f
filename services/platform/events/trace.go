package events

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const scope = "github.com/kompetensnav/kompetensnav/services/platform/events"

// startSpan starts the span of one handled event: a consumer span in a trace
// of its own, linked to the span of the call that produced the event (its
// W3C trace context travels in the envelope). A link rather than a parent,
// as OpenTelemetry's messaging conventions advise: the handling happens
// later and maybe many times, and must not stretch the producer's trace.
func startSpan(ctx context.Context, d *Delivery) (context.Context, trace.Span) {
	var opts []trace.SpanStartOption
	name := "process " + d.Event.GetType()
	if d.Event == nil {
		name = "process " + d.Stream
	}
	carrier := propagation.MapCarrier{"traceparent": d.Event.GetTraceparent(), "tracestate": d.Event.GetTracestate()}
	if sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier)); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	opts = append(opts, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithNewRoot(), trace.WithAttributes(
		attribute.String("messaging.system", "redis"),
		attribute.String("messaging.destination.name", d.Stream),
		attribute.String("messaging.consumer.group.name", d.Group),
		attribute.String("messaging.message.id", d.ID),
		attribute.String("cloudevents.event_id", d.Event.GetId()),
		attribute.String("cloudevents.event_type", d.Event.GetType()),
		attribute.String("cloudevents.event_subject", d.Event.GetSubject()),
		attribute.Int64("kn.events.deliveries", d.Deliveries),
	))
	return otel.Tracer(scope).Start(ctx, name, opts...)
}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// consumerMetrics are one consumer's instruments. The gauges (lag, pending,
// dead letters) are read from Redis when the metrics are collected, not on
// the hot path.
type consumerMetrics struct {
	attrs    metric.MeasurementOption
	stream   string
	group    string
	duration metric.Float64Histogram
	count    metric.Int64Counter
}

func newConsumerMetrics(stream, group string) *consumerMetrics {
	m := otel.Meter(scope)
	cm := &consumerMetrics{stream: stream, group: group,
		attrs: metric.WithAttributes(attribute.String("stream", stream), attribute.String("group", group))}
	cm.duration, _ = m.Float64Histogram("kn.events.handler.duration", metric.WithUnit("s"),
		metric.WithDescription("How long a handler took per event"))
	cm.count, _ = m.Int64Counter("kn.events.handled",
		metric.WithDescription("Events handled, by outcome: ok, retry, dead_letter, poison"))
	return cm
}

func (m *consumerMetrics) latency(ctx context.Context, d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.duration.Record(ctx, d.Seconds(), m.attrs, metric.WithAttributes(attribute.String("outcome", outcome)))
}

func (m *consumerMetrics) handled(ctx context.Context, outcome string) {
	m.count.Add(ctx, 1, m.attrs, metric.WithAttributes(attribute.String("outcome", outcome)))
}

// observe registers the gauges read from Redis at collection time: the
// group's lag (entries not yet delivered to it), its pending entries
// (delivered, not acknowledged) and the dead letters it left. They are
// reported, never fatal: readiness does not depend on them.
func (m *consumerMetrics) observe(rdb redis.UniversalClient, deadLetters string) (unregister func()) {
	meter := otel.Meter(scope)
	lag, _ := meter.Int64ObservableGauge("kn.events.lag",
		metric.WithDescription("Entries of the stream not yet delivered to the consumer group"))
	pending, _ := meter.Int64ObservableGauge("kn.events.pending",
		metric.WithDescription("Entries delivered to the group and not yet acknowledged"))
	dead, _ := meter.Int64ObservableGauge("kn.events.dead_letters",
		metric.WithDescription("Entries the group gave up on, waiting in its dead-letter stream"))
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if g, err := groupInfo(ctx, rdb, m.stream, m.group); err == nil {
			o.ObserveInt64(lag, g.Lag, m.attrs)
			o.ObserveInt64(pending, g.Pending, m.attrs)
		}
		if n, err := rdb.XLen(ctx, deadLetters).Result(); err == nil {
			o.ObserveInt64(dead, n, m.attrs)
		}
		return nil
	}, lag, pending, dead)
	if err != nil {
		return func() {}
	}
	return func() { _ = reg.Unregister() }
}
