package events_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/events"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	producerKS = store.Keyspace("producer")
	consumerKS = store.Keyspace("consumer")
	group      = "consumer"
)

var stream = producerKS.Events()

// env is a producer's Redis (the stream) and a consumer's own Redis (the
// effect and its apply-once records): two servers, as in production.
type env struct {
	src, own redis.UniversalClient
	st       *store.Store // the consumer's store
}

func each(t *testing.T, f func(t *testing.T, e env)) {
	testkit.Backends(t, func(t *testing.T, src redis.UniversalClient) {
		var own redis.UniversalClient
		if strings.HasSuffix(t.Name(), "embedded") {
			own = testkit.Embedded(t)
		} else {
			own = testkit.Redis(t)
		}
		f(t, env{src: src, own: own, st: store.New(own, consumerKS, testkit.Logger())})
	})
}

// produce appends n events with sequence numbers from..from+n-1 as data,
// pipelined (what store.Tx.Emit writes, without a resource beside it).
func produce(t testing.TB, rdb redis.UniversalClient, from, n int) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 1000 {
		cmds := make([]*redis.StringCmd, 0, 1000)
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := start; i < min(start+1000, n); i++ {
				seq := from + i
				data, _ := anypb.New(wrapperspb.Int64(int64(seq)))
				b, _ := proto.Marshal(&commonv1.Event{Id: fmt.Sprintf("ev-%06d", seq), Source: "/kompetensnav/producer",
					Type: "kompetensnav.producer.v1.thing.happened", Subject: fmt.Sprintf("things/%d", seq),
					Time: timestamppb.Now(), Data: data})
				cmds = append(cmds, p.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"type", "kompetensnav.producer.v1.thing.happened", "event", b}}))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			ids = append(ids, c.Val())
		}
	}
	return ids
}

// effect is the idempotent effect every test handler commits: count the
// event and remember its sequence number, applied once per event.
func effect(ctx context.Context, st *store.Store, d *events.Delivery) error {
	var seq wrapperspb.Int64Value
	if err := d.Decode(&seq); err != nil {
		return err
	}
	tx := st.Tx()
	events.ApplyOnce(tx, d)
	tx.HIncrBy(consumerKS.Key("count"), "n", 1)
	tx.SAdd(consumerKS.Key("seen"), fmt.Sprint(seq.GetValue()))
	_, err := tx.Commit(ctx)
	return err
}

func count(t testing.TB, rdb redis.UniversalClient) int64 {
	t.Helper()
	n, err := rdb.HGet(context.Background(), consumerKS.Key("count"), "n").Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return n
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func consumer(t testing.TB, cfg events.Config, h events.Handler) *events.Consumer {
	t.Helper()
	if cfg.Stream == "" {
		cfg.Stream = stream
	}
	if cfg.Group == "" {
		cfg.Group = group
	}
	cfg.Logger = testkit.Logger()
	c, err := events.NewConsumer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run starts c until the test ends; the returned function stops it and
// waits for Run to return.
func run(t testing.TB, c *events.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// groupState is the test group's state (zero before it exists).
func groupState(t testing.TB, rdb redis.UniversalClient, name string) events.GroupInfo {
	t.Helper()
	info, err := events.Inspect(context.Background(), rdb, stream)
	if err != nil && !strings.Contains(err.Error(), "no such key") {
		t.Fatal(err)
	}
	for _, s := range info {
		for _, g := range s.Groups {
			if g.Name == name {
				return g
			}
		}
	}
	return events.GroupInfo{}
}

func group0(t testing.TB, rdb redis.UniversalClient) events.GroupInfo {
	return groupState(t, rdb, group)
}

func TestEveryEventExactlyOnceAcrossFourConsumers(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		const n = 10_000
		produce(t, e.src, 0, n)
		var calls atomic.Int64
		for i := range 4 {
			c := consumer(t, events.Config{Source: e.src, Consumer: fmt.Sprintf("c%d", i), Batch: 50},
				func(ctx context.Context, d *events.Delivery) error {
					calls.Add(1)
					return effect(ctx, e.st, d)
				})
			run(t, c)
		}
		eventually(t, 2*time.Minute, "all events handled", func() bool { return count(t, e.own) >= n })
		eventually(t, 30*time.Second, "all acknowledged", func() bool {
			g := group0(t, e.src)
			return g.Pending == 0 && g.Lag == 0
		})
		if got := count(t, e.own); got != n {
			t.Fatalf("effect counted %d, want %d", got, n)
		}
		if seen, _ := e.own.SCard(context.Background(), consumerKS.Key("seen")).Result(); seen != n {
			t.Fatalf("%d distinct events applied, want %d", seen, n)
		}
		if calls.Load() != n {
			t.Logf("handler called %d times for %d events (redeliveries are allowed, double effects are not)", calls.Load(), n)
		}
	})
}

// A consumer dies after reading a batch: part of it committed and not
// acknowledged, part not even applied. Another consumer takes the batch over
// after ClaimIdle and every effect still happens exactly once.
func TestCrashedConsumersEntriesAreReclaimed(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		const n = 30
		produce(t, e.src, 0, n)
		// The dying consumer has a connection of its own, closed to kill it.
		dyingClient := redis.NewUniversalClient(testkit.Options(t, e.src))
		reached, release := make(chan struct{}), make(chan struct{})
		var handled atomic.Int32
		dying := consumer(t, events.Config{Source: dyingClient, Consumer: "dying", Batch: 10, ClaimIdle: 300 * time.Millisecond},
			func(ctx context.Context, d *events.Delivery) error {
				switch handled.Add(1) {
				case 1, 2, 3:
					return effect(ctx, e.st, d) // committed, never acknowledged
				case 4:
					close(reached)
					<-release
				}
				return errors.New("process is dying")
			})
		stopDying := run(t, dying)
		<-reached
		_ = dyingClient.Close() // the acknowledgement and every later call fail
		close(release)
		stopDying()
		if got := count(t, e.own); got != 3 {
			t.Fatalf("before the takeover %d effects, want 3", got)
		}
		if g := group0(t, e.src); g.Pending != 10 {
			t.Fatalf("%d entries pending after the crash, want the 10 of the batch", g.Pending)
		}

		survivor := consumer(t, events.Config{Source: e.src, Consumer: "survivor", ClaimIdle: 300 * time.Millisecond},
			func(ctx context.Context, d *events.Delivery) error { return effect(ctx, e.st, d) })
		run(t, survivor)
		eventually(t, 30*time.Second, "takeover", func() bool { return count(t, e.own) >= n && group0(t, e.src).Pending == 0 })
		if got := count(t, e.own); got != n {
			t.Fatalf("%d effects, want %d", got, n)
		}
	})
}

func TestHandlerFailingTwiceIsRetriedAndAppliedOnce(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		produce(t, e.src, 0, 3)
		var mu sync.Mutex
		seenDeliveries := map[string][]int64{}
		c := consumer(t, events.Config{Source: e.src, Backoff: 20 * time.Millisecond},
			func(ctx context.Context, d *events.Delivery) error {
				mu.Lock()
				seenDeliveries[d.Event.GetId()] = append(seenDeliveries[d.Event.GetId()], d.Deliveries)
				attempts := len(seenDeliveries[d.Event.GetId()])
				mu.Unlock()
				if d.Event.GetId() == "ev-000001" && attempts <= 2 {
					return errors.New("downstream busy")
				}
				return effect(ctx, e.st, d)
			})
		run(t, c)
		eventually(t, 30*time.Second, "all three applied", func() bool { return count(t, e.own) == 3 && group0(t, e.src).Pending == 0 })
		mu.Lock()
		defer mu.Unlock()
		if got := fmt.Sprint(seenDeliveries["ev-000001"]); got != "[1 2 3]" {
			t.Fatalf("deliveries of the failing event %s, want [1 2 3]", got)
		}
		if n, _ := e.src.XLen(context.Background(), events.DeadLetterStream(stream, group)).Result(); n != 0 {
			t.Fatalf("%d dead letters", n)
		}
	})
}

// The effect is committed and then the handler fails (say the ack is lost
// in a crash): the redelivery applies nothing.
func TestRedeliveryAfterCommitDoesNotApplyTwice(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		produce(t, e.src, 0, 1)
		var calls atomic.Int32
		c := consumer(t, events.Config{Source: e.src, Backoff: 10 * time.Millisecond},
			func(ctx context.Context, d *events.Delivery) error {
				err := effect(ctx, e.st, d)
				if calls.Add(1) == 1 {
					return errors.New("lost after commit")
				}
				return err
			})
		run(t, c)
		eventually(t, 30*time.Second, "acknowledged", func() bool { return calls.Load() >= 2 && group0(t, e.src).Pending == 0 })
		if got := count(t, e.own); got != 1 {
			t.Fatalf("effect applied %d times", got)
		}
	})
}

func TestAlwaysFailingEventIsDeadLetteredAndReplayable(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		ids := produce(t, e.src, 0, 5)
		// A poison entry: no decodable envelope.
		poison := e.src.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"type", "x", "event", "\xff\xfe not protobuf"}}).Val()
		var fixed atomic.Bool
		c := consumer(t, events.Config{Source: e.src, MaxDeliveries: 3, Backoff: 10 * time.Millisecond},
			func(ctx context.Context, d *events.Delivery) error {
				if d.Event.GetId() == "ev-000002" && !fixed.Load() {
					return errors.New("provider not found: providers/p9")
				}
				return effect(ctx, e.st, d)
			})
		run(t, c)
		eventually(t, 30*time.Second, "group moved on", func() bool { return count(t, e.own) == 4 && group0(t, e.src).Pending == 0 })

		dl, err := events.DeadLetters(ctx, e.src, stream, group, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dl) != 2 {
			t.Fatalf("dead letters %+v, want the failing event and the poison entry", dl)
		}
		byID := map[string]events.DeadLetter{}
		for _, d := range dl {
			byID[d.SourceID] = d
		}
		failed := byID[ids[2]]
		if failed.Deliveries != 3 || failed.Error != "provider not found: providers/p9" || failed.Group != group || failed.Stream != stream {
			t.Fatalf("dead letter of the failing event: %+v", failed)
		}
		if p := byID[poison]; p.Deliveries != 1 || !strings.Contains(p.Error, "no decodable event envelope") {
			t.Fatalf("poison dead letter: %+v", p)
		}

		// After the fix, a replay applies it, once, for this group only.
		fixed.Store(true)
		other := consumer(t, events.Config{Source: e.src, Group: "other", StartID: "$"},
			func(ctx context.Context, d *events.Delivery) error {
				t.Errorf("group other handled a replay meant for %s: %s", group, d.Event.GetId())
				return nil
			})
		run(t, other)
		eventually(t, 10*time.Second, "other group exists", func() bool {
			gs, _ := e.src.XInfoGroups(ctx, stream).Result()
			return len(gs) == 2
		})
		if _, err := events.Replay(ctx, e.src, stream, group, failed.ID); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "replay applied", func() bool { return count(t, e.own) == 5 })
		eventually(t, 30*time.Second, "other group acknowledged the replay", func() bool {
			g := groupState(t, e.src, "other")
			return g.Name != "" && g.Pending == 0 && g.Lag == 0
		})
		if dl, _ := events.DeadLetters(ctx, e.src, stream, group, 10); len(dl) != 1 {
			t.Fatalf("after the replay %d dead letters, want only the poison entry", len(dl))
		}
	})
}

func TestRouteAcknowledgesOtherTypes(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		produce(t, e.src, 0, 3)
		var calls atomic.Int32
		c := consumer(t, events.Config{Source: e.src}, events.Route(map[string]events.Handler{
			"kompetensnav.other.v1.x": func(context.Context, *events.Delivery) error { calls.Add(1); return nil },
		}))
		run(t, c)
		eventually(t, 10*time.Second, "acknowledged", func() bool {
			g := group0(t, e.src)
			return g.Name != "" && g.Pending == 0 && g.Lag == 0 && g.LastDelivered != "0-0"
		})
		if calls.Load() != 0 {
			t.Fatal("a handler ran for a type it was not routed")
		}
	})
}

func TestStopWhileBlockedReturnsPromptly(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := consumer(t, events.Config{Source: e.src, Block: time.Minute},
			func(context.Context, *events.Delivery) error { return nil })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		// Blocked: the group exists, and on redis-server a client is
		// blocked in XREADGROUP (the embedded store has no CLIENT LIST).
		embedded := strings.HasSuffix(t.Name(), "embedded")
		eventually(t, 10*time.Second, "consumer blocked in its read", func() bool {
			if groupState(t, e.src, group).Name == "" {
				return false
			}
			if embedded {
				return true
			}
			clients, err := e.src.ClientList(ctx).Result()
			return err == nil && strings.Contains(clients, "cmd=xreadgroup")
		})
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second): // far below the one-minute block
			t.Fatal("Run did not return after its context ended while blocked")
		}
	})
}

// The handler's span is linked to the span of the call that emitted the
// event, through the trace context store.Tx puts in the envelope.
func TestHandlerSpanLinksToProducer(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	src := testkit.Redis(t)
	producer := store.New(src, producerKS, testkit.Logger())
	ctx, span := tp.Tracer("test").Start(context.Background(), "ApproveNeed")
	tx := producer.Tx()
	tx.Emit("thing.happened", "things/1", wrapperspb.Int64(1))
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	span.End()

	handled := make(chan struct{})
	c := consumer(t, events.Config{Source: src}, func(context.Context, *events.Delivery) error {
		close(handled)
		return nil
	})
	run(t, c)
	<-handled
	eventually(t, 10*time.Second, "consumer span ended", func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "process kompetensnav.producer.v1.thing.happened" {
				for _, l := range s.Links() {
					if l.SpanContext.TraceID() == span.SpanContext().TraceID() && l.SpanContext.SpanID() == span.SpanContext().SpanID() {
						return true
					}
				}
			}
		}
		return false
	})
}

func TestNewConsumerRejectsIncompleteConfig(t *testing.T) {
	h := func(context.Context, *events.Delivery) error { return nil }
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for name, cfg := range map[string]events.Config{
		"no source": {Stream: "s", Group: "g"},
		"no stream": {Source: rdb, Group: "g"},
		"no group":  {Source: rdb, Stream: "s"},
	} {
		if _, err := events.NewConsumer(cfg, h); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := events.NewConsumer(events.Config{Source: rdb, Stream: "s", Group: "g"}, nil); err == nil {
		t.Error("no handler: accepted")
	}
}

func TestDeadLetterStreamNames(t *testing.T) {
	for in, want := range map[string]string{
		"kn:{councils}:events": "kn:{councils}:deadletter:procurement",
		"kn:{councils}:audit":  "kn:{councils}:deadletter:procurement:audit",
	} {
		if got := events.DeadLetterStream(in, "procurement"); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
