package events_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
)

// BenchmarkConsume: events per second through one consumer whose effect is
// a trivial idempotent write (ApplyOnce + a counter) to a second Redis.
func BenchmarkConsume(b *testing.B) {
	for _, batch := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			src, own := testkit.Redis(b), testkit.Redis(b)
			st := store.New(own, consumerKS, testkit.Logger())
			produce(b, src, 0, b.N)
			var done atomic.Int64
			finished := make(chan struct{})
			c := consumer(b, events.Config{Source: src, Batch: batch}, func(ctx context.Context, d *events.Delivery) error {
				if err := effect(ctx, st, d); err != nil {
					return err
				}
				if done.Add(1) == int64(b.N) {
					close(finished)
				}
				return nil
			})
			b.ResetTimer()
			run(b, c)
			<-finished
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
