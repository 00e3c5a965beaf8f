package listing_test

import (
	"context"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type row struct{ name, state string }

var stateIndex = &listing.Index[row]{
	Collection: "things",
	Name:       func(r row) string { return r.name },
	Orders:     map[string]func(row) string{"name": func(r row) string { return listing.TextKey(r.name) }},
	Fields:     map[string]func(row) []string{"state": func(r row) []string { return []string{r.state} }},
}

// The gauge reports each value's count from the index sets, and follows
// the writes.
func TestCountGaugeReportsRowsByValue(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		prev := otel.GetMeterProvider()
		otel.SetMeterProvider(mp)
		t.Cleanup(func() { otel.SetMeterProvider(prev); _ = mp.Shutdown(context.Background()) })

		ks := store.Keyspace("test")
		st := store.New(rdb, ks, testkit.Logger())
		ctx := context.Background()
		put := func(r row) {
			tx := st.Tx()
			key := ks.Key("thing", r.name)
			if err := tx.Put(key, wrapperspb.String(r.name)); err != nil {
				t.Fatal(err)
			}
			tx.SetIndex(key, stateIndex.Entries(ks, r))
			if _, err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		put(row{"a", "OPEN"})
		put(row{"b", "OPEN"})
		put(row{"c", "CLOSED"})

		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- stateIndex.CountGauge("kn.test.things", "things by state", "state", []string{"OPEN", "CLOSED", "LOST"}, rdb, ks)(runCtx)
		}()
		want := map[string]int64{"OPEN": 2, "CLOSED": 1, "LOST": 0}
		if got := waitGauge(t, reader, "kn.test.things", len(want)); !equal(got, want) {
			t.Fatalf("gauge %v, want %v", got, want)
		}
		put(row{"b", "CLOSED"}) // b moves
		want = map[string]int64{"OPEN": 1, "CLOSED": 2, "LOST": 0}
		if got := waitGauge(t, reader, "kn.test.things", len(want)); !equal(got, want) {
			t.Fatalf("after a move: gauge %v, want %v", got, want)
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func waitGauge(t *testing.T, r *sdkmetric.ManualReader, name string, n int) map[string]int64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := map[string]int64{}
		var rm metricdata.ResourceMetrics
		if err := r.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == name {
					for _, p := range g.DataPoints {
						v, _ := p.Attributes.Value("state")
						got[v.AsString()] = p.Value
					}
				}
			}
		}
		if len(got) == n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func equal(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
