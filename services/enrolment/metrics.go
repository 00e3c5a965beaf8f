package enrolment

import (
	"context"
	"strings"
	"time"

	enrolmentv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/enrolment/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/listing"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// metrics are the service's domain gauges, as Background runs, read from
// what the lists and the enrolment step keep anyway (no counter of its
// own to drift):
//
//   - kn.enrolment.enrolments{state}: enrolments by state, from the
//     enrolment list's state index (listing.Index.CountGauge);
//   - kn.enrolment.waitlist.length{offering}: the waitlist of each offering
//     that is open or running (the ones whose waitlist can still move),
//     from the offering list's state index and each waitlist's size.
//
// Every replica reports the same values: aggregate with max.
func (s *Service) metrics() []func(context.Context) error {
	return []func(context.Context) error{
		enrolmentIndex.CountGauge("kn.enrolment.enrolments", "Enrolments by state", "state", enrolmentStates(), s.rdb, Keyspace),
		s.waitlistGauge,
	}
}

func enrolmentStates() []string {
	var out []string
	for n, name := range enrolmentv1.Enrolment_State_name {
		if n != int32(enrolmentv1.Enrolment_STATE_UNSPECIFIED) {
			out = append(out, name)
		}
	}
	return out
}

// waitlistStates are the offering states whose waitlists are reported.
var waitlistStates = []enrolmentv1.Offering_State{enrolmentv1.Offering_STATE_OPEN, enrolmentv1.Offering_STATE_RUNNING}

// waitlistGauge registers kn.enrolment.waitlist.length until ctx ends.
func (s *Service) waitlistGauge(ctx context.Context) error {
	meter := otel.Meter("github.com/kompetensnav/kompetensnav/services/enrolment")
	g, err := meter.Int64ObservableGauge("kn.enrolment.waitlist.length",
		metric.WithDescription("Participants on the waitlist of each open or running offering"))
	if err != nil {
		return err
	}
	var indexes []string
	for _, st := range waitlistStates {
		indexes = append(indexes, offeringIndex.Key(Keyspace, "create_time", false, "state", st.String()))
	}
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var names []string
		for _, ix := range indexes {
			members, err := s.rdb.ZRange(ctx, ix, 0, -1).Result()
			if err != nil {
				return nil // Redis unreachable: no observation, never an error that stops the others
			}
			for _, m := range members {
				names = append(names, listing.MemberName(m))
			}
		}
		if len(names) == 0 {
			return nil
		}
		cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, n := range names {
				p.ZCard(ctx, waitlistKey(strings.TrimPrefix(n, "offerings/")))
			}
			return nil
		})
		if err != nil {
			return nil
		}
		for i, c := range cmds {
			o.ObserveInt64(g, c.(*redis.IntCmd).Val(), metric.WithAttributes(attribute.String("offering", names[i])))
		}
		return nil
	}, g)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return reg.Unregister()
}
