package listing

import (
	"context"
	"slices"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// CountGauge is a domain metric served from the indexes the lists already
// keep: the gauge name reports, for each of values, how many rows of the
// collection have that value of field (one ZCARD of its index set each),
// with the attribute field=value — needs by state, enrolments by state, a
// waitlist's length. It is a Background run: registered when it starts,
// gone when ctx ends. Every replica reports the same counts, so aggregate
// them with max, not sum.
func (ix *Index[R]) CountGauge(name, description, field string, values []string, rdb redis.UniversalClient, ks store.Keyspace) func(context.Context) error {
	return func(ctx context.Context) error {
		orders := make([]string, 0, len(ix.Orders))
		for o := range ix.Orders {
			orders = append(orders, o)
		}
		slices.Sort(orders)
		if len(orders) == 0 {
			return nil
		}
		meter := otel.Meter("github.com/kompetensnav/kompetensnav/services/platform/listing")
		g, err := meter.Int64ObservableGauge(name, metric.WithDescription(description))
		if err != nil {
			return err
		}
		keys := make([]string, len(values))
		attrs := make([]metric.ObserveOption, len(values))
		for i, v := range values {
			// Every order's set of a value holds the same rows.
			keys[i] = ix.Key(ks, orders[0], false, field, v)
			attrs[i] = metric.WithAttributes(attribute.String(field, v))
		}
		reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.ZCard(ctx, k)
				}
				return nil
			})
			if err != nil {
				return nil // Redis unreachable: no observation, never an error that stops the others
			}
			for i, c := range cmds {
				o.ObserveInt64(g, c.(*redis.IntCmd).Val(), attrs[i])
			}
			return nil
		}, g)
		if err != nil {
			return err
		}
		<-ctx.Done()
		return reg.Unregister()
	}
}
