package councils_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// rawCodec sends bytes as they are, as a hostile or broken client would.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(proto.Message); ok {
		return encoding.GetCodecV2("proto").Unmarshal(data, m)
	}
	*v.(*[]byte) = data.Materialize()
	return nil
}

// rawCreateCouncil calls CreateCouncil with body as the request's bytes.
func rawCreateCouncil(conn *grpc.ClientConn, body []byte) error {
	var out councilsv1.SectorCouncil
	return conn.Invoke(ctx, councilsv1.CouncilsService_CreateCouncil_FullMethodName, &body, &out, grpc.ForceCodecV2(rawCodec{}))
}

// councilBytes encodes a CreateCouncilRequest by hand: council_id, and a
// council with display_name and sector, plus any extra council bytes.
func councilBytes(id, displayName string, extra []byte) []byte {
	var c []byte
	c = protowire.AppendTag(c, 2, protowire.BytesType)
	c = protowire.AppendString(c, displayName)
	c = protowire.AppendTag(c, 3, protowire.VarintType)
	c = protowire.AppendVarint(c, uint64(commonv1.Sector_SECTOR_RETAIL))
	c = append(c, extra...)
	var r []byte
	r = protowire.AppendTag(r, 1, protowire.BytesType)
	r = protowire.AppendBytes(r, c)
	r = protowire.AppendTag(r, 2, protowire.BytesType)
	r = protowire.AppendString(r, id)
	return r
}

type rawEnv struct {
	env
	conn *grpc.ClientConn
}

func eachRaw(t *testing.T, f func(t *testing.T, e rawEnv)) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		clk := newClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
		svc, err := councils.New(councils.Options{Redis: rdb, Logger: testkit.Logger(), Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		conn := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) })
		f(t, rawEnv{env{c: councilsv1.NewCouncilsServiceClient(conn), rdb: rdb, clock: clk}, conn})
	})
}

// Requests that do not decode are INVALID_ARGUMENT naming the field (not
// INTERNAL), and write nothing.
func TestUndecodableRequestsAreInvalidArgument(t *testing.T) {
	eachRaw(t, func(t *testing.T, e rawEnv) {
		before := testkit.KeyCount(t, e.rdb)
		err := rawCreateCouncil(e.conn, councilBytes("utf", "Fordon\xff\xfe", nil))
		testkit.WantBadRequest(t, err, "council.display_name")
		valid := councilBytes("cut", "Fordon", nil)
		err = rawCreateCouncil(e.conn, valid[:len(valid)-2])
		testkit.WantBadRequest(t, err, "request")
		if after := testkit.KeyCount(t, e.rdb); after != before {
			t.Fatalf("%d keys written", after-before)
		}
	})
}

// Fields outside the schema are dropped before anything is stored: 3 MB of
// them neither bypass the length rules nor bloat the council.
func TestUnknownFieldsAreNotStored(t *testing.T) {
	eachRaw(t, func(t *testing.T, e rawEnv) {
		var junk []byte
		junk = protowire.AppendTag(junk, 99, protowire.BytesType)
		junk = protowire.AppendBytes(junk, make([]byte, 3<<20))
		if err := rawCreateCouncil(e.conn, councilBytes("bloat", "Fordon", junk)); err != nil {
			t.Fatal(err)
		}
		stored, err := e.rdb.HGet(ctx, councils.Keyspace.Key("council", "bloat"), "pb").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) > 10_000 {
			t.Fatalf("stored council is %d bytes", len(stored))
		}
		got, err := e.c.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: "councils/bloat"})
		if err != nil || len(got.ProtoReflect().GetUnknown()) != 0 {
			t.Fatalf("%v, %d unknown bytes", err, len(got.ProtoReflect().GetUnknown()))
		}
	})
}

// The text rules of the schema: blank required text, control characters,
// line breaks and bidi overrides in one-line fields are refused, naming the
// field; multi-line fields take line breaks.
func TestTextRules(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		before := testkit.KeyCount(t, e.rdb)
		for _, c := range []struct {
			name, field string
			edit        func(r *councilsv1.CreateCouncilRequest)
		}{
			{"blank", "council.display_name", func(r *councilsv1.CreateCouncilRequest) { r.Council.DisplayName = " \t " }},
			{"NUL", "council.display_name", func(r *councilsv1.CreateCouncilRequest) { r.Council.DisplayName = "For\x00don" }},
			{"BEL", "council.display_name", func(r *councilsv1.CreateCouncilRequest) { r.Council.DisplayName = "For\adon" }},
			{"ESC", "council.member_organisations[1]", func(r *councilsv1.CreateCouncilRequest) {
				r.Council.MemberOrganisations = []string{"IF Metall", "\x1b[31mröd"}
			}},
			{"C1", "council.display_name", func(r *councilsv1.CreateCouncilRequest) { r.Council.DisplayName = "For\u0085don" }},
			{"newline", "council.display_name", func(r *councilsv1.CreateCouncilRequest) { r.Council.DisplayName = "For\ndon" }},
			{"RLO", "council.display_name", func(r *councilsv1.CreateCouncilRequest) { r.Council.DisplayName = "Fordon\u202egnin" }},
			{"isolate", "council.display_name", func(r *councilsv1.CreateCouncilRequest) { r.Council.DisplayName = "\u2067Fordon" }},
		} {
			r := council("text", commonv1.Sector_SECTOR_RETAIL)
			c.edit(r)
			_, err := e.c.CreateCouncil(ctx, r)
			msg := testkit.WantBadRequest(t, err, c.field)
			if strings.Contains(msg, "\x00") || strings.Contains(msg, "\x1b") {
				t.Errorf("%s: the message repeats the control character: %q", c.name, msg)
			}
		}
		if after := testkit.KeyCount(t, e.rdb); after != before {
			t.Fatalf("%d keys written", after-before)
		}
		// Multi-line fields take line breaks; tabs are fine everywhere.
		mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		r := need("councils/fordon")
		r.Need.Title = "Svetsning\tmed robot"
		r.Need.Rationale = "Omvärldsbevakning:\n- elektrifiering\r\n- automation"
		mustNeed(t, e, r)
		r = need("councils/fordon")
		r.Need.Title = "Svetsning\nmed robot"
		_, err := e.c.CreateNeed(ctx, r)
		testkit.WantBadRequest(t, err, "need.title")
	})
}

// A council's municipalities bound its open needs': an update may not
// leave one outside, nor empty the list; an update that changes nothing
// writes nothing.
func TestCouncilUpdateKeepsItsNeedsConsistent(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		n := need(c.GetName()) // names 1480 and 1440
		n.NeedId = "svets"
		mustNeed(t, e, n)
		events := len(eventTypes(t, e))

		narrowed := proto.CloneOf(c)
		narrowed.Municipalities = []string{"1480", "1481"}
		_, err := e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: narrowed,
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"municipalities"}}})
		st := wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "councils/fordon/needs/svets (1440)") {
			t.Fatalf("message does not name the need and the code: %s", st.Message())
		}
		var pf *errdetails.PreconditionFailure
		for _, d := range st.Details() {
			if p, ok := d.(*errdetails.PreconditionFailure); ok {
				pf = p
			}
		}
		if pf == nil || pf.GetViolations()[0].GetSubject() != "councils/fordon/needs/svets" {
			t.Fatalf("PreconditionFailure %v", pf)
		}

		// A full replacement that leaves out municipalities would empty them.
		full := proto.CloneOf(c)
		full.Municipalities = nil
		_, err = e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: full,
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"*"}}})
		testkit.WantBadRequest(t, err, "council.municipalities")

		// Closed needs do not hold the council back.
		if _, err := e.c.CloseNeed(ctx, &councilsv1.CloseNeedRequest{Name: "councils/fordon/needs/svets"}); err != nil {
			t.Fatal(err)
		}
		events++
		if _, err := e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: narrowed,
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"municipalities"}}}); err != nil {
			t.Fatal(err)
		}
		events++
		if got := len(eventTypes(t, e)); got != events {
			t.Fatalf("%d events, want %d: refused updates wrote some", got, events)
		}

		// An empty PATCH changes nothing: same etag, no event.
		cur, _ := e.c.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: "councils/fordon"})
		same, err := e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: &councilsv1.SectorCouncil{Name: "councils/fordon"}})
		if err != nil || same.GetEtag() != cur.GetEtag() {
			t.Fatalf("no-op update: %v, etag %s → %s", err, cur.GetEtag(), same.GetEtag())
		}
		if got := len(eventTypes(t, e)); got != events {
			t.Fatal("a no-op update emitted an event")
		}
	})
}

// hangAtNextWrite arms srv's client so that its next write script finds
// Redis hung: the server is paused (SIGSTOP) just before the script is
// sent and resumed after d, longer than the client's read timeout, so the
// client library resends the script and both copies reach Redis when it
// wakes. (Pausing before the call would only delay the read before it.)
type hangAtNextWrite struct {
	srv   *testkit.RedisServer
	d     time.Duration
	armed atomic.Bool
}

func (h *hangAtNextWrite) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *hangAtNextWrite) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *hangAtNextWrite) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if (cmd.Name() == "evalsha" || cmd.Name() == "eval") && h.armed.CompareAndSwap(true, false) {
			if err := h.srv.Pause(); err == nil {
				time.AfterFunc(h.d, func() { _ = h.srv.Resume() })
			}
		}
		return next(ctx, cmd)
	}
}

// evalCalls is how many write scripts Redis has run (or refused) so far.
func evalCalls(t *testing.T, rdb redis.UniversalClient) int {
	t.Helper()
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, cmd := range []string{"evalsha", "eval"} {
		if _, rest, ok := strings.Cut(info, "cmdstat_"+cmd+":calls="); ok {
			v, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			n += v
		}
	}
	return n
}

// The scenarios that failed before writes carried operation ids: Redis
// hangs for five seconds in the middle of a write (an approval; a create
// without needId or requestId). The client library resends the write
// script and both copies run when Redis wakes; each write happens once and
// the call reports it as done, instead of "already APPROVED" or
// ALREADY_EXISTS for the id it had generated itself.
func TestWritesThroughARedisHang(t *testing.T) {
	srv := testkit.StartRedis(t)
	hang := &hangAtNextWrite{srv: srv, d: 5 * time.Second}
	srv.Client.AddHook(hang)
	svc, err := councils.New(councils.Options{Redis: srv.Client, Logger: testkit.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	e := env{c: councilsv1.NewCouncilsServiceClient(testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) })), rdb: srv.Client}
	c := mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
	r := need(c.GetName())
	r.Need.NeededBy = nil
	n, err := e.c.CreateNeed(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: n.GetName()}); err != nil {
		t.Fatal(err)
	}
	count := func(typ string) int {
		k := 0
		for _, got := range eventTypes(t, e) {
			if got == typ {
				k++
			}
		}
		return k
	}
	// through runs call with Redis hanging at its write, and checks that
	// the hang did make the client library send the script twice.
	through := func(what string, call func() error) {
		t.Helper()
		before := evalCalls(t, srv.Client)
		hang.armed.Store(true)
		if err := call(); err != nil {
			t.Fatalf("%s through a 5 s hang: %v", what, err)
		}
		if hang.armed.Load() {
			t.Fatalf("%s: no write script was sent", what)
		}
		if got := evalCalls(t, srv.Client) - before; got < 2 {
			t.Fatalf("%s: Redis ran the write script %d times; the hang did not make the client resend it", what, got)
		}
	}

	through("approve", func() error {
		got, err := e.c.ApproveNeed(ctx, &councilsv1.ApproveNeedRequest{Name: n.GetName()})
		if err == nil && got.GetState() != councilsv1.CompetenceNeed_STATE_APPROVED {
			return fmt.Errorf("state %v", got.GetState())
		}
		return err
	})
	if k := count("need.approved"); k != 1 {
		t.Fatalf("%d need.approved events", k)
	}

	r = need(c.GetName())
	r.Need.NeededBy = nil
	var created *councilsv1.CompetenceNeed
	through("create without an id", func() error {
		created, err = e.c.CreateNeed(ctx, r)
		return err
	})
	if _, err := e.c.GetNeed(ctx, &councilsv1.GetNeedRequest{Name: created.GetName()}); err != nil {
		t.Fatalf("the need the create reported: %v", err)
	}
	if k := count("need.created"); k != 2 {
		t.Fatalf("%d need.created events, want 2 (one per create)", k)
	}
}
