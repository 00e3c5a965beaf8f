// Package events consumes the services' outbox streams reliably: a fact a
// service committed (a need approved, a notice registered, a course
// completed, an audit record) reaches every service that acts on it, once,
// across crashes and restarts.
//
// # The guarantee
//
// Every write appends its event to the producer's stream in the same atomic
// step as the change (store.Tx.Emit), so no fact is lost on the producing
// side. On the consuming side:
//
//   - Delivery is at least once. A consumer group reads the stream
//     (XREADGROUP); an entry stays pending until the handler has committed
//     its effect and the consumer acknowledges it (XACK). An entry read by a
//     consumer that then crashed is taken over by another after ClaimIdle
//     (XAUTOCLAIM). A handler error is retried with backoff; after
//     MaxDeliveries deliveries the entry is copied to a dead-letter stream
//     with the error and acknowledged, so one bad event does not stop the
//     group. Trimmer never removes an entry some group has not acknowledged.
//   - Applying is idempotent. A handler whose effect is a write to its own
//     Redis adds ApplyOnce to that write's store.Tx: the event id is recorded
//     in the same atomic step as the effect, so a redelivered event (a crash
//     after commit and before the ack, a retry whose first attempt did commit)
//     finds its id and writes nothing.
//
// At-least-once delivery plus an effect that happens at most once per event
// id gives an effect that happens exactly once. The record is kept for
// Retention; an event is redelivered only while it is pending, which ends
// within MaxDeliveries backoffs (minutes), so a week leaves a wide margin.
// A dead letter replayed after a fix (Replay, or `kompetensnav events
// replay`) keeps its event id, so it too applies at most once.
//
// # Adding a consumer
//
// Procurement following councils' approved needs, in its own process, with
// its own Redis for the effect and the councils' Redis as the source:
//
//	c, err := events.NewConsumer(events.Config{
//		Source: councilsRedis,               // the producer's Redis
//		Stream: "kn:{councils}:events",      // the producer's stream
//		Group:  "procurement",               // one group per consuming service
//		Logger: log,
//	}, events.Route(map[string]events.Handler{
//		"kompetensnav.councils.v1.need.approved": func(ctx context.Context, d *events.Delivery) error {
//			var need councilsv1.CompetenceNeed
//			if err := d.Decode(&need); err != nil {
//				return err
//			}
//			tx := st.Tx()
//			events.ApplyOnce(tx, d)
//			tx.ZAdd(queueKey, score(&need), need.GetName())
//			_, err := tx.Commit(ctx)
//			return err
//		},
//	}))
//	bg := events.Start(ctx, log, c.Run, events.NewTrimmer(rdb, log, Keyspace.Events()).Run)
//	defer bg.Stop()
//
// Events of other types are acknowledged without calling a handler. Replicas
// of the consuming service share the group's work: each process is its own
// consumer (ConsumerName: host name and process id).
//
// # Streams and keys
//
// A producer's stream is its public interface: the one thing in another
// service's Redis that a consumer reads (and acknowledges, in the consumer
// group it owns there). Dead letters go to a stream beside the source stream,
// in the producer's hash slot, so moving an entry there and acknowledging it
// is one atomic step: kn:{svc}:deadletter:<group> for the events stream,
// kn:{svc}:deadletter:<group>:<stream> for another stream of the service
// (its audit stream, say).
//
// # On the embedded store
//
// The all-in-one without -redis runs on the embedded store (miniredis),
// and so does this consumer: every test of this package that touches
// storage runs on it as well as on redis-server (testkit.Backends), with
// the same results: groups, blocking reads and a prompt stop, XAUTOCLAIM
// and XCLAIM, dead letters and replays, apply-once, MINID trimming. It
// differs in three ways, none of which loses or repeats an event:
//
//   - XINFO GROUPS reports no entries-read and a group's lag as the
//     stream's length; Inspect and the lag metric then count the entries
//     after the group's last delivered one (up to MaxCountedLag).
//   - XTRIM trims exactly where redis-server trims whole nodes ("~"), so
//     it keeps fewer entries, never one a group still needs.
//   - It has no CLIENT LIST, and it keeps nothing when the process stops:
//     events not yet consumed then go with all the other data.
//
// # Throughput
//
// BenchmarkConsume (one consumer, a trivial idempotent effect written with
// ApplyOnce to a second redis-server, both on the same 2-core machine,
// 20 000 events, two runs):
//
//	batch   1:  ~4 700–5 200 events/s
//	batch  10:  ~11 700–12 400 events/s
//	batch 100:  ~15 200–15 600 events/s
//
// Larger batches amortise the read and the acknowledgement; the effect's
// own atomic write is one round trip per event whatever the batch.
package events
