package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Lag, pending, dead letters and handled counts are reported per stream and
// group.
func TestConsumerReportsMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(mp)
	t.Cleanup(func() { otel.SetMeterProvider(prev) })

	src := testkit.Redis(t)
	produce(t, src, 0, 5)
	release := make(chan struct{})
	c := consumer(t, events.Config{Source: src, Batch: 1}, func(ctx context.Context, d *events.Delivery) error {
		<-release // hold the first event: one pending, four not delivered
		return nil
	})
	stop := run(t, c)
	collect := func() map[string]int64 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case metricdata.Gauge[int64]:
					for _, p := range d.DataPoints {
						got[m.Name] = p.Value
					}
				case metricdata.Sum[int64]:
					for _, p := range d.DataPoints {
						got[m.Name] += p.Value
					}
				case metricdata.Histogram[float64]:
					for _, p := range d.DataPoints {
						got[m.Name] += int64(p.Count)
					}
				}
			}
		}
		return got
	}
	eventually(t, 10*time.Second, "lag 4 and 1 pending reported", func() bool {
		m := collect()
		return m["kn.events.lag"] == 4 && m["kn.events.pending"] == 1
	})
	close(release)
	eventually(t, 10*time.Second, "all handled and reported", func() bool {
		m := collect()
		return m["kn.events.handled"] == 5 && m["kn.events.handler.duration"] == 5 && m["kn.events.lag"] == 0 && m["kn.events.pending"] == 0
	})
	if m := collect(); m["kn.events.dead_letters"] != 0 {
		t.Fatalf("dead letters reported: %v", m)
	}
	stop()
}
