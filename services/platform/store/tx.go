package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// IdempotencyTTL is how long a request_id is remembered.
const IdempotencyTTL = 24 * time.Hour

// OpTTL is how long a write's operation id is remembered. A write reaches
// Redis more than once only when a copy is resent on another connection
// within the same call (the client library retrying after a read timeout),
// which happens within seconds; minutes leave a wide margin.
const OpTTL = 10 * time.Minute

// WriteWindow is how long after Commit starts a write may still be applied.
// A copy that reaches Redis later (it hung, the client library gave up and
// the caller was told the write failed) is refused without effect, so a
// write reported as failed does not happen behind the caller's back. It is
// below go-redis's give-up time (3 s read timeout × 4 attempts, see redisx);
// a shorter context deadline shortens it.
const WriteWindow = 8 * time.Second

// ErrExpired is what Commit returns for a write Redis reached only after its
// window: nothing was written.
var ErrExpired = status.Error(codes.Unavailable, "storage did not answer in time; nothing was written; retry")

const fieldData, fieldEtag = "pb", "etag"

// Tx is one atomic write: checks first, then writes, then events, all in one
// Lua script. If any check fails nothing is written and Commit returns the
// error given with that check.
//
// A Tx may hold one Branch: two alternative sets of writes and events, of
// which the script applies the one its condition picks when the write
// lands (a seat when there is room, the waitlist when there is none).
type Tx struct {
	*txState
	// branch tags what this view adds: 0 always, 1 the Branch's then, 2
	// its otherwise.
	branch int
}

type txState struct {
	s      *Store
	keys   []string
	keyIdx map[string]int
	argv   []any
	plan   plan
	errs   []error
	idem   *idemSpec
	evErrs []error
	opID   string
	// events are marshalled at Commit, when the call's context (and so its
	// trace) is known; arg is the ARGV index of each one's bytes.
	events []pendingEvent
	// stored is the name of the first resource Put: what a write RPC's
	// audit record names.
	stored string
	// outcome is what the script reported (Outcome).
	outcome Outcome
}

type pendingEvent struct {
	ev  *commonv1.Event
	arg int
}

type idemSpec struct{ name, fingerprint string }

// plan is what the script executes; indexes point into KEYS and ARGV
// (1-based, as Lua sees them). Values travel in ARGV, never in the JSON,
// because protobuf bytes are not valid JSON strings.
type plan struct {
	Op     *planOp     `json:"op,omitempty"`
	Idem   *planIdem   `json:"idem,omitempty"`
	Checks []planCheck `json:"checks"`
	Branch *planCheck  `json:"br,omitempty"`
	Writes []planWrite `json:"writes"`
	Events []planEvent `json:"events"`
	Ranks  []planCheck `json:"ranks,omitempty"`
}

// planOp is the write's operation id: recorded when the write is applied,
// so a second copy of the same script (same ARGV) answers "ok" without
// running again.
type planOp struct {
	K   int   `json:"k"`
	TTL int64 `json:"ttl"`
	// D is the end of the write window, in Unix milliseconds.
	D int64 `json:"d"`
}

type planIdem struct {
	K   int   `json:"k"`
	V   int   `json:"v"`
	TTL int64 `json:"ttl"`
}

type planCheck struct {
	Op string `json:"op"` // exists | absent | etag | atmost | rangeempty | first | fieldis
	K  int    `json:"k"`
	V  int    `json:"v,omitempty"`
	F  int    `json:"f,omitempty"` // atmost, fieldis: the hash field
	M  int    `json:"m,omitempty"` // atmost: the maximum
}

type planWrite struct {
	Op string `json:"op"` // put | del | zadd | zaddseq | zrem | sadd | srem | hset | hincrby | index | unindex
	K  int    `json:"k"`
	V  int    `json:"v,omitempty"`
	E  int    `json:"e,omitempty"`
	F  int    `json:"f,omitempty"` // hset, hincrby, zaddseq: the hash field
	C  int    `json:"c,omitempty"` // zaddseq: the hash holding the sequence
	B  int    `json:"b,omitempty"` // 0 always; 1, 2: the Branch's then, otherwise
}

// planEvent appends one entry to a stream: F lists ARGV indexes of
// alternating field names and values; N > 0 trims with MAXLEN ~ N.
type planEvent struct {
	K int   `json:"k"`
	F []int `json:"f"`
	N int64 `json:"n,omitempty"`
	B int   `json:"b,omitempty"`
}

// Tx starts an atomic write. Every Tx carries an operation id of its own
// (see OpID), so Redis applies it at most once however often it is sent.
func (s *Store) Tx() *Tx {
	t := &Tx{txState: &txState{s: s, keyIdx: map[string]int{}, opID: uuid.NewString()}}
	t.argv = []any{""} // ARGV[1] is the plan, filled in by Commit
	return t
}

// OpID sets the write's operation id, replacing the random one Tx gave it.
// The script records the id when it applies the write and answers a second
// copy with "ok" without running it again. Use it when the caller has a
// stable id for this very write attempt; request-level retries are
// Idempotent's job.
func (t *Tx) OpID(id string) { t.opID = id }

func (t *Tx) key(k string) int {
	if i, ok := t.keyIdx[k]; ok {
		return i
	}
	t.keys = append(t.keys, k)
	t.keyIdx[k] = len(t.keys)
	return len(t.keys)
}

func (t *Tx) arg(v any) int {
	t.argv = append(t.argv, v)
	return len(t.argv)
}

func (t *Tx) check(op, key string, v int, err error) {
	t.plan.Checks = append(t.plan.Checks, planCheck{Op: op, K: t.key(key), V: v})
	t.errs = append(t.errs, err)
}

// MustExist fails the write with err unless key exists.
func (t *Tx) MustExist(key string, err error) { t.check("exists", key, 0, err) }

// MustNotExist fails the write with err if key exists (for a set or sorted
// set: unless it is empty).
func (t *Tx) MustNotExist(key string, err error) { t.check("absent", key, 0, err) }

// EtagIs fails the write unless the resource at key still has etag; with a
// nil err it fails with ErrConflict.
func (t *Tx) EtagIs(key, etag string, err error) {
	if err == nil {
		err = ErrConflict
	}
	t.check("etag", key, t.arg(etag), err)
}

// Idempotent makes the write happen once per key (kept IdempotencyTTL): a
// later Commit with the same key writes nothing and returns the name the
// first one recorded. fingerprint (see Fingerprint) tells a retry from a
// different request that reuses the id.
func (t *Tx) Idempotent(key, name, fingerprint string) {
	t.IdempotentFor(key, name, fingerprint, IdempotencyTTL)
}

// IdempotentFor is Idempotent with the key kept for ttl instead of
// IdempotencyTTL (an event consumer keeps the ids of events it applied for
// as long as a redelivery can happen).
func (t *Tx) IdempotentFor(key, name, fingerprint string, ttl time.Duration) {
	t.plan.Idem = &planIdem{K: t.key(key), V: t.arg(name + "\n" + fingerprint), TTL: max(int64(ttl/time.Second), 1)}
	t.idem = &idemSpec{name: name, fingerprint: fingerprint}
}

// RangeEmpty fails the write with err when the sorted set at key has a
// member between min and max, given as ZRANGE … BYLEX takes them ("[x",
// "(x", "-", "+"): "no notice dated after the cut-off" on a date index.
func (t *Tx) RangeEmpty(key, min, max string, err error) {
	t.plan.Checks = append(t.plan.Checks, planCheck{Op: "rangeempty", K: t.key(key), V: t.arg(min), M: t.arg(max)})
	t.errs = append(t.errs, err)
}

// AtMost fails the write with err unless the integer in field of the hash
// at key (0 when absent) plus delta is at most limit. With HIncrBy on the
// same field it keeps a running total under a ceiling atomically (an
// agreement's awarded value, a count under a capacity).
func (t *Tx) AtMost(key, field string, delta, limit int64, err error) {
	t.plan.Checks = append(t.plan.Checks, planCheck{Op: "atmost", K: t.key(key),
		F: t.arg(field), V: t.arg(strconv.FormatInt(delta, 10)), M: t.arg(strconv.FormatInt(limit, 10))})
	t.errs = append(t.errs, err)
}

// FieldIs fails the write with err unless field of the hash at key holds
// value ("" for absent): a compare-and-set of one field, for a field
// rewritten from what was read of it by writers that do not otherwise
// conflict (a derived value kept beside data written without an etag).
func (t *Tx) FieldIs(key, field, value string, err error) {
	if err == nil {
		err = ErrConflict
	}
	t.plan.Checks = append(t.plan.Checks, planCheck{Op: "fieldis", K: t.key(key), F: t.arg(field), V: t.arg(value)})
	t.errs = append(t.errs, err)
}

// FirstIs fails the write with err unless member is the first (lowest
// scored) member of the sorted set at key: "the head of the queue is still
// the one read", for a write that acts on it.
func (t *Tx) FirstIs(key, member string, err error) {
	t.check("first", key, t.arg(member), err)
}

// A Cond decides a Branch inside the script.
type Cond struct {
	key, field   string
	delta, limit int64
}

// Fits holds when the integer in field of the hash at key (0 when absent)
// plus delta is at most limit: AtMost's test, as a Branch condition.
func Fits(key, field string, delta, limit int64) Cond {
	return Cond{key: key, field: field, delta: delta, limit: limit}
}

// Branch splits the write in two alternatives decided by cond inside the
// script, after the checks: the writes and events added through then are
// applied when cond holds as the write lands, those added through
// otherwise when it does not, and what is added to t itself either way.
// Checks (and Idempotent) added through either view apply to the whole
// write. Outcome tells which alternative was taken. A Tx has at most one
// Branch.
//
// It is what a count-dependent write needs without reading the count in
// Go first: a seat when an offering has room, else the waitlist, however
// many enrolments race for the last seat.
func (t *Tx) Branch(cond Cond) (then, otherwise *Tx) {
	if t.plan.Branch != nil {
		t.evErrs = append(t.evErrs, errors.New("a write has at most one Branch"))
	}
	t.plan.Branch = &planCheck{Op: "fits", K: t.key(cond.key), F: t.arg(cond.field),
		V: t.arg(strconv.FormatInt(cond.delta, 10)), M: t.arg(strconv.FormatInt(cond.limit, 10))}
	return &Tx{txState: t.txState, branch: 1}, &Tx{txState: t.txState, branch: 2}
}

// ReportRank asks the script for the 0-based rank of member in the sorted
// set at key once its writes are done (-1 when member is not in it): the
// position a write just gave a member, without reading it again.
// Outcome().Ranks holds the answers in the order asked.
func (t *Tx) ReportRank(key, member string) {
	t.plan.Ranks = append(t.plan.Ranks, planCheck{Op: "zrank", K: t.key(key), V: t.arg(member)})
}

// Outcome is what the script reported about a write it applied (or, for a
// resent copy, what the first copy reported): whether a Branch took its
// then alternative (true without a Branch), and the ranks asked for with
// ReportRank. It is empty after a Commit that returned a Replay or an
// error.
type Outcome struct {
	Then  bool
	Ranks []int64
}

// Outcome is the outcome of the last Commit.
func (t *Tx) Outcome() Outcome { return t.outcome }

// parseOutcome reads the script's report: "" (nothing to say), or "t" /
// "e" for a Branch's alternative, then "|<rank>" per ReportRank. A resent
// copy of a write applied before outcomes existed reports "1".
func parseOutcome(s string, ranks int) (Outcome, error) {
	o := Outcome{Then: true}
	if s == "" || s == "1" || s == "replayed" {
		if ranks > 0 {
			return o, fmt.Errorf("no ranks in the outcome %q", s)
		}
		return o, nil
	}
	parts := strings.Split(s, "|")
	switch parts[0] {
	case "", "t":
	case "e":
		o.Then = false
	default:
		return o, fmt.Errorf("outcome %q", s)
	}
	if len(parts)-1 != ranks {
		return o, fmt.Errorf("outcome %q has %d ranks, want %d", s, len(parts)-1, ranks)
	}
	for _, p := range parts[1:] {
		r, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return o, fmt.Errorf("outcome %q: %w", s, err)
		}
		o.Ranks = append(o.Ranks, r)
	}
	return o, nil
}

// Put stores m at key with a fresh etag, which it also sets on m.
func (t *Tx) Put(key string, m proto.Message) error {
	setEtag(m, NewEtag())
	// Nothing outside the schema is stored (the server's codec drops
	// unknown fields of requests; this keeps it so for any other source).
	discardUnknown(m.ProtoReflect())
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > MaxResourceBytes {
		return status.Errorf(codes.InvalidArgument, "%s would take %d bytes stored, more than the %d a resource may; shorten its text or lists",
			m.ProtoReflect().Descriptor().Name(), len(b), MaxResourceBytes)
	}
	t.plan.Writes = append(t.plan.Writes, planWrite{Op: "put", K: t.key(key), V: t.arg(b), E: t.arg(etagOf(m)), B: t.branch})
	if t.stored == "" {
		t.stored = nameOf(m)
	}
	return nil
}

// MaxResourceBytes caps a stored resource. The largest the schemas allow
// (a need with every field at its limit in four-byte characters) is about
// 141 kB; a page of List responses must stay below gRPC's 4 MiB.
const MaxResourceBytes = 1 << 20

func discardUnknown(m protoreflect.Message) {
	m.SetUnknown(nil)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					discardUnknown(mv.Message())
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := range v.List().Len() {
					discardUnknown(v.List().Get(i).Message())
				}
			}
		case fd.Message() != nil:
			discardUnknown(v.Message())
		}
		return true
	})
}

// Del deletes key.
func (t *Tx) Del(key string) {
	t.plan.Writes = append(t.plan.Writes, planWrite{Op: "del", K: t.key(key), B: t.branch})
}

// ZAdd adds (or re-scores) member in the sorted set at key.
func (t *Tx) ZAdd(key string, score float64, member string) {
	t.plan.Writes = append(t.plan.Writes, planWrite{Op: "zadd", K: t.key(key),
		V: t.arg(member), E: t.arg(strconv.FormatFloat(score, 'f', -1, 64)), B: t.branch})
}

// ZAddSeq adds member to the sorted set at key with the next number of a
// sequence kept in field of the hash at seqKey (incremented in the same
// step), so the set orders its members by when their writes landed: a
// queue in commit order, whatever the writers' clocks.
func (t *Tx) ZAddSeq(key, member, seqKey, field string) {
	t.plan.Writes = append(t.plan.Writes, planWrite{Op: "zaddseq", K: t.key(key), V: t.arg(member),
		C: t.key(seqKey), F: t.arg(field), B: t.branch})
}

// ZRem removes member from the sorted set at key.
func (t *Tx) ZRem(key, member string) {
	t.plan.Writes = append(t.plan.Writes, planWrite{Op: "zrem", K: t.key(key), V: t.arg(member), B: t.branch})
}

// SAdd adds member to the set at key.
func (t *Tx) SAdd(key, member string) {
	t.plan.Writes = append(t.plan.Writes, planWrite{Op: "sadd", K: t.key(key), V: t.arg(member), B: t.branch})
}

// SRem removes member from the set at key.
func (t *Tx) SRem(key, member string) {
	t.plan.Writes = append(t.plan.Writes, planWrite{Op: "srem", K: t.key(key), V: t.arg(member), B: t.branch})
}

// HSet sets field of the hash at key to value.
func (t *Tx) HSet(key, field string, value any) {
	t.plan.Writes = append(t.plan.Writes, planWrite{Op: "hset", K: t.key(key), F: t.arg(field), V: t.arg(value), B: t.branch})
}

// HIncrBy adds delta to the integer in field of the hash at key.
func (t *Tx) HIncrBy(key, field string, delta int64) {
	t.plan.Writes = append(t.plan.Writes, planWrite{Op: "hincrby", K: t.key(key), F: t.arg(field), V: t.arg(strconv.FormatInt(delta, 10)), B: t.branch})
}

// Append adds an entry to the stream at key (a key of this service) in the
// same atomic step, with fields given as name, value, name, value…
// (values string or []byte). maxLen > 0 trims the stream to about that
// many entries; 0 leaves trimming to whoever owns the stream's retention.
func (t *Tx) Append(key string, maxLen int64, fields ...any) {
	if len(fields)%2 != 0 {
		t.evErrs = append(t.evErrs, fmt.Errorf("stream entry for %s: odd number of field arguments", key))
		return
	}
	e := planEvent{K: t.key(key), N: maxLen, F: make([]int, len(fields)), B: t.branch}
	for i, f := range fields {
		e.F[i] = t.arg(f)
	}
	t.plan.Events = append(t.plan.Events, e)
}

// Emit appends an event to the service's stream in the same atomic step:
// typ is relative to the service ("need.approved" becomes
// "kompetensnav.councils.v1.need.approved"), subject the resource name, data
// the resource after the change.
func (t *Tx) Emit(typ, subject string, data proto.Message) {
	ev, err := t.s.envelope(typ, subject, data)
	if err != nil {
		t.evErrs = append(t.evErrs, err)
		return
	}
	// No MAXLEN here: the stream is trimmed by events.Trimmer, which never
	// drops an entry a consumer group has not acknowledged.
	e := planEvent{K: t.key(t.s.ks.Events()), F: []int{t.arg("type"), t.arg(ev.GetType()), t.arg("event"), t.arg("")}, B: t.branch}
	t.plan.Events = append(t.plan.Events, e)
	t.events = append(t.events, pendingEvent{ev: ev, arg: e.F[3]})
}

// Once makes the write happen at most once per name, remembered for ttl: a
// later Commit of a Tx with the same name writes nothing and returns a
// non-nil Replay. An event consumer uses it to apply each event once
// (events.ApplyOnce), with the record kept beside the effect.
func (t *Tx) Once(ttl time.Duration, name ...string) {
	t.IdempotentFor(t.s.ks.Key(append([]string{"once"}, name...)...), "", "", ttl)
}

func (s *Store) envelope(typ, subject string, data proto.Message) (*commonv1.Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	anyData, err := anypb.New(data)
	if err != nil {
		return nil, err
	}
	return &commonv1.Event{
		Id:      id.String(),
		Source:  "/kompetensnav/" + string(s.ks),
		Type:    "kompetensnav." + string(s.ks) + ".v1." + typ,
		Subject: subject,
		Time:    timestamppb.Now(),
		Data:    anyData,
	}, nil
}

// Replay tells that Commit found the request's idempotency key and wrote
// nothing; Name is the resource the first request created.
type Replay struct {
	Name string
}

// Commit runs the write. It returns a non-nil Replay (and writes nothing)
// when an idempotency key set with Idempotent was already recorded for the
// same request, INVALID_ARGUMENT on request_id when it was recorded for a
// different one, and the error of the first failed check if one fails.
//
// Inside a guarded write RPC (see audit.FromContext) the first Commit that
// applies also appends the call's audit record to the service's
// kn:{service}:audit stream, in the same atomic step: a write is never
// without its record, nor a record without its write.
func (t *Tx) Commit(ctx context.Context) (*Replay, error) {
	if len(t.evErrs) > 0 {
		return nil, fmt.Errorf("building event: %w", errors.Join(t.evErrs...))
	}
	// The producing call's trace context travels in the envelope, so the
	// consumer's span links back to it.
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	for _, pe := range t.events {
		pe.ev.Traceparent, pe.ev.Tracestate = carrier.Get("traceparent"), carrier.Get("tracestate")
		b, err := proto.Marshal(pe.ev)
		if err != nil {
			return nil, fmt.Errorf("building event: %w", err)
		}
		t.argv[pe.arg-1] = b
	}
	if call := audit.FromContext(ctx); call.ClaimWrite() {
		written := false
		defer func() { call.Settle(written) }()
		rec, err := audit.Marshal(call.Record(accessv1.AuditRecord_KIND_WRITE, string(t.s.ks), t.stored, codes.OK))
		if err != nil {
			return nil, err
		}
		t.Append(t.s.ks.Audit(), 0, audit.Field, rec)
		replay, applied, err := t.commit(ctx)
		written = applied
		return replay, err
	}
	replay, _, err := t.commit(ctx)
	return replay, err
}

// commit runs the script; applied says it wrote (even when the write then
// went unconfirmed by replicas and err says so).
func (t *Tx) commit(ctx context.Context) (replay *Replay, applied bool, err error) {
	if t.plan.Checks == nil {
		t.plan.Checks = []planCheck{}
	}
	if t.plan.Writes == nil {
		t.plan.Writes = []planWrite{}
	}
	if t.plan.Events == nil {
		t.plan.Events = []planEvent{}
	}
	t.outcome = Outcome{}
	if t.plan.Op == nil {
		// Set once per Tx: a resent copy must carry the same window.
		now := time.Now()
		end := now.Add(WriteWindow)
		if dl, ok := ctx.Deadline(); ok && dl.Add(-250*time.Millisecond).Before(end) {
			end = dl.Add(-250 * time.Millisecond)
			if floor := now.Add(100 * time.Millisecond); end.Before(floor) {
				end = floor
			}
		}
		t.plan.Op = &planOp{K: t.key(t.s.ks.Key("op", t.opID)), TTL: int64(OpTTL / time.Second), D: end.UnixMilli()}
	}
	p, err := json.Marshal(t.plan)
	if err != nil {
		return nil, false, err
	}
	t.argv[0] = string(p)
	cmd, replErr := redisx.RunReplicated(ctx, t.s.rdb, txScript, t.keys, t.argv...)
	res, err := cmd.StringSlice()
	if err != nil {
		return nil, false, t.s.Err(ctx, err)
	}
	if len(res) != 2 {
		return nil, false, t.s.Err(ctx, fmt.Errorf("tx script returned %q", res))
	}
	switch res[0] {
	case "ok":
		o, err := parseOutcome(res[1], len(t.plan.Ranks))
		if err != nil {
			return nil, false, t.s.Err(ctx, fmt.Errorf("tx script: %w", err))
		}
		t.outcome = o
		if replErr != nil {
			return nil, true, t.s.notReplicated(ctx, replErr)
		}
		return nil, true, nil
	case "expired":
		return nil, false, ErrExpired
	case "idem":
		name, fp, _ := strings.Cut(res[1], "\n")
		if t.idem != nil && fp != t.idem.fingerprint {
			return nil, false, apierr.Field("request_id", "was already used for a different request in the last 24 hours")
		}
		return &Replay{Name: name}, false, nil
	case "fail":
		i, err := strconv.Atoi(res[1])
		if err != nil || i < 1 || i > len(t.errs) {
			return nil, false, t.s.Err(ctx, fmt.Errorf("tx script failed check %q", res[1]))
		}
		return nil, false, t.errs[i-1]
	}
	return nil, false, t.s.Err(ctx, fmt.Errorf("tx script returned %q", res))
}

// Replayed reports whether the idempotency key (as given to Tx.Idempotent)
// is already recorded: the Replay of the first request with the same
// fingerprint, INVALID_ARGUMENT on request_id for a different one, nil
// when it is new. A create that must ask another service before it writes
// (is the need approved?) looks first, so that a retry returns the first
// result even when the answer has changed since; the write's own
// Idempotent still decides between concurrent copies.
func (s *Store) Replayed(ctx context.Context, key, fingerprint string) (*Replay, error) {
	prev, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, s.Err(ctx, err)
	}
	name, fp, _ := strings.Cut(prev, "\n")
	if fp != fingerprint {
		return nil, apierr.Field("request_id", "was already used for a different request in the last 24 hours")
	}
	return &Replay{Name: name}, nil
}

// Fingerprint identifies a request's content, for Idempotent.
func Fingerprint(req proto.Message) string {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// txScript is the single write path of every service. Keys are passed in
// KEYS (all in the service's slot); the plan in ARGV[1] refers to them and
// to the values in ARGV by index.
var txScript = redis.NewScript(`
local plan = cjson.decode(ARGV[1])
if plan.op then
  local done = redis.call('GET', KEYS[plan.op.k])
  if done then return {'ok', done} end
end
if plan.op then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > plan.op.d then
    return {'expired', ''}
  end
end
if plan.idem then
  local prev = redis.call('GET', KEYS[plan.idem.k])
  if prev then return {'idem', prev} end
end
for i, c in ipairs(plan.checks) do
  local key = KEYS[c.k]
  local ok
  if c.op == 'exists' then
    ok = redis.call('EXISTS', key) == 1
  elseif c.op == 'absent' then
    ok = redis.call('EXISTS', key) == 0
  elseif c.op == 'etag' then
    ok = redis.call('HGET', key, 'etag') == ARGV[c.v]
  elseif c.op == 'rangeempty' then
    ok = #redis.call('ZRANGE', key, ARGV[c.v], ARGV[c.m], 'BYLEX', 'LIMIT', 0, 1) == 0
  elseif c.op == 'atmost' then
    local cur = tonumber(redis.call('HGET', key, ARGV[c.f]) or '0') or 0
    ok = cur + tonumber(ARGV[c.v]) <= tonumber(ARGV[c.m])
  elseif c.op == 'fieldis' then
    ok = (redis.call('HGET', key, ARGV[c.f]) or '') == ARGV[c.v]
  elseif c.op == 'first' then
    local f = redis.call('ZRANGE', key, 0, 0)
    ok = f[1] == ARGV[c.v]
  else
    return redis.error_reply('unknown check ' .. tostring(c.op))
  end
  if not ok then return {'fail', tostring(i)} end
end
-- A Branch picks one of two alternatives; writes and events tagged b = 1
-- happen when its condition holds, b = 2 when it does not.
local took = true
if plan.br then
  local c = plan.br
  local cur = tonumber(redis.call('HGET', KEYS[c.k], ARGV[c.f]) or '0') or 0
  took = cur + tonumber(ARGV[c.v]) <= tonumber(ARGV[c.m])
end
local function applies(b)
  return b == nil or b == 0 or (b == 1 and took) or (b == 2 and not took)
end
for _, w in ipairs(plan.writes) do
  local key = KEYS[w.k]
  if not applies(w.b) then
    -- the other alternative's
  elseif w.op == 'put' then
    redis.call('HSET', key, 'pb', ARGV[w.v], 'etag', ARGV[w.e])
  elseif w.op == 'del' then
    redis.call('DEL', key)
  elseif w.op == 'zadd' then
    redis.call('ZADD', key, ARGV[w.e], ARGV[w.v])
  elseif w.op == 'zaddseq' then
    local seq = redis.call('HINCRBY', KEYS[w.c], ARGV[w.f], 1)
    redis.call('ZADD', key, seq, ARGV[w.v])
  elseif w.op == 'zrem' then
    redis.call('ZREM', key, ARGV[w.v])
  elseif w.op == 'sadd' then
    redis.call('SADD', key, ARGV[w.v])
  elseif w.op == 'srem' then
    redis.call('SREM', key, ARGV[w.v])
  elseif w.op == 'hset' then
    redis.call('HSET', key, ARGV[w.f], ARGV[w.v])
  elseif w.op == 'hincrby' then
    redis.call('HINCRBY', key, ARGV[w.f], ARGV[w.v])
  elseif w.op == 'index' then
    -- ARGV[w.v]: the resource's index memberships, one "key\2member" a
    -- line; the hash field ix holds the previous ones.
    local add = {}
    for line in string.gmatch(ARGV[w.v], '[^\n]+') do add[line] = true end
    local old = redis.call('HGET', key, 'ix')
    if old then
      for line in string.gmatch(old, '[^\n]+') do
        if add[line] then
          add[line] = nil
        else
          local k, m = string.match(line, '^(.-)\2(.*)$')
          redis.call('ZREM', k, m)
        end
      end
    end
    for line in pairs(add) do
      local k, m = string.match(line, '^(.-)\2(.*)$')
      redis.call('ZADD', k, 0, m)
    end
    redis.call('HSET', key, 'ix', ARGV[w.v])
  elseif w.op == 'unindex' then
    local old = redis.call('HGET', key, 'ix')
    if old then
      for line in string.gmatch(old, '[^\n]+') do
        local k, m = string.match(line, '^(.-)\2(.*)$')
        redis.call('ZREM', k, m)
      end
      redis.call('HDEL', key, 'ix')
    end
  else
    return redis.error_reply('unknown write ' .. tostring(w.op))
  end
end
for _, e in ipairs(plan.events) do
  if applies(e.b) then
  local args = {KEYS[e.k]}
  if e.n and e.n > 0 then
    table.insert(args, 'MAXLEN'); table.insert(args, '~'); table.insert(args, e.n)
  end
  table.insert(args, '*')
  for _, f in ipairs(e.f) do table.insert(args, ARGV[f]) end
  redis.call('XADD', unpack(args))
  end
end
-- What the caller learns: the alternative taken and the ranks asked for,
-- kept with the operation id so a resent copy learns the same.
local out = ''
if plan.br then
  if took then out = 't' else out = 'e' end
end
for _, r in ipairs(plan.ranks or {}) do
  local rank = redis.call('ZRANK', KEYS[r.k], ARGV[r.v])
  if not rank then rank = -1 end
  out = out .. '|' .. tostring(rank)
end
if plan.idem then
  redis.call('SET', KEYS[plan.idem.k], ARGV[plan.idem.v], 'EX', plan.idem.ttl)
end
if plan.op then
  local done = out
  if done == '' then done = '1' end
  redis.call('SET', KEYS[plan.op.k], done, 'EX', plan.op.ttl)
end
return {'ok', out}
`)

// ErrUnchanged, returned by an Update's change, says the update would not
// change the resource: nothing is written (no new etag, no event) and
// Update returns the resource as it is.
var ErrUnchanged = errors.New("unchanged")

// Update reads the resource at key, lets change modify it and add its writes
// (change must Put it), and commits on condition that nobody changed the
// resource in between. A concurrent change makes it read again and retry,
// unless the caller pinned clientEtag: then any mismatch is ABORTED. The
// invariant is checked inside the Lua step, never by the read in Go.
func Update[T proto.Message](ctx context.Context, s *Store, key, name, clientEtag string, newT func() T, change func(cur T, tx *Tx) error) (T, error) {
	var zero T
	for attempt := 0; attempt < 20; attempt++ {
		cur := newT()
		if err := s.Get(ctx, key, cur); err != nil {
			if errors.Is(err, ErrNotFound) {
				return zero, apierr.NotFound(name)
			}
			return zero, err
		}
		seen := etagOf(cur)
		if clientEtag != "" && clientEtag != seen {
			return zero, apierr.Aborted(name)
		}
		tx := s.Tx()
		tx.EtagIs(key, seen, nil)
		if err := change(cur, tx); errors.Is(err, ErrUnchanged) {
			return cur, nil
		} else if err != nil {
			return zero, err
		}
		_, err := tx.Commit(ctx)
		if errors.Is(err, ErrConflict) {
			if clientEtag != "" {
				return zero, apierr.Aborted(name)
			}
			continue
		}
		if err != nil {
			return zero, err
		}
		return cur, nil
	}
	return zero, apierr.Aborted(name)
}
