package councils_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/councils"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// clock is the service's time, moved by tests.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time   { return time.Unix(0, c.t.Load()) }
func (c *clock) set(t time.Time)  { c.t.Store(t.UnixNano()) }
func (c *clock) tick()            { c.t.Add(int64(time.Millisecond)) }
func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }

type env struct {
	c     councilsv1.CouncilsServiceClient
	rdb   redis.UniversalClient
	clock *clock
}

// each runs f against a real redis-server and against the embedded store,
// with the service served over a real loopback gRPC connection.
func each(t *testing.T, f func(t *testing.T, e env)) {
	t.Helper()
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		clk := newClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
		svc, err := councils.New(councils.Options{Redis: rdb, Logger: testkit.Logger(), Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		conn := testkit.Serve(t, func(g *grpc.Server) { svc.Register(g) }, testkit.Guarded(rdb, councils.Policy))
		f(t, env{c: councilsv1.NewCouncilsServiceClient(conn), rdb: rdb, clock: clk})
	})
}

var ctx = context.Background()

func council(id string, sector commonv1.Sector) *councilsv1.CreateCouncilRequest {
	return &councilsv1.CreateCouncilRequest{
		CouncilId: id,
		Council: &councilsv1.SectorCouncil{
			DisplayName:         "Kompetensråd " + id,
			Sector:              sector,
			MemberOrganisations: []string{"IF Metall", "Teknikföretagen"},
			ContactEmail:        "kansli@example.org",
		},
	}
}

func need(parent string) *councilsv1.CreateNeedRequest {
	return &councilsv1.CreateNeedRequest{
		Parent: parent,
		Need: &councilsv1.CompetenceNeed{
			Title:          "Svetsning med robot",
			Description:    "Operatörer som kan programmera svetsrobotar",
			Skills:         []string{"robotsvetsning", "plc"},
			Headcount:      40,
			TargetGroups:   []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_EMPLOYED_AT_RISK, commonv1.TargetGroup_TARGET_GROUP_NOTIFIED},
			Municipalities: []string{"1480", "1440"},
			NeededBy:       &date.Date{Year: 2026, Month: 9, Day: 1},
			Rationale:      "Omvärldsbevakning: elektrifieringen kräver ny kompetens",
		},
	}
}

func mustCouncil(t *testing.T, e env, id string, sector commonv1.Sector) *councilsv1.SectorCouncil {
	t.Helper()
	c, err := e.c.CreateCouncil(ctx, council(id, sector))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustNeed(t *testing.T, e env, req *councilsv1.CreateNeedRequest) *councilsv1.CompetenceNeed {
	t.Helper()
	e.clock.tick()
	n, err := e.c.CreateNeed(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("want %v, got %v", code, err)
	}
	return st
}

func eventTypes(t *testing.T, e env) []string {
	t.Helper()
	msgs, err := e.rdb.XRange(ctx, councils.Keyspace.Events(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		typ, _ := m.Values["type"].(string)
		out = append(out, strings.TrimPrefix(typ, "kompetensnav.councils.v1."))
	}
	return out
}

func TestNeedLifecycle(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		if c.GetName() != "councils/fordon" || len(c.GetMunicipalities()) != 13 || c.GetEtag() == "" || c.GetCreateTime() == nil {
			t.Fatalf("created council %v", c)
		}
		n := mustNeed(t, e, need(c.GetName()))
		if n.GetState() != councilsv1.CompetenceNeed_STATE_DRAFT || n.GetPriority() != councilsv1.Priority_PRIORITY_MEDIUM {
			t.Fatalf("new need %v", n)
		}
		if !strings.HasPrefix(n.GetName(), "councils/fordon/needs/") {
			t.Fatalf("name %s", n.GetName())
		}

		// Only a submitted need can be approved; the error names the state.
		_, err := e.c.ApproveNeed(ctx, &councilsv1.ApproveNeedRequest{Name: n.GetName()})
		st := wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "STATE_DRAFT") {
			t.Fatalf("message does not name the state: %s", st.Message())
		}

		n, err = e.c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: n.GetName()})
		if err != nil || n.GetState() != councilsv1.CompetenceNeed_STATE_SUBMITTED || n.GetSubmitTime() == nil {
			t.Fatalf("submit: %v %v", n, err)
		}
		// Only DRAFT needs are editable.
		_, err = e.c.UpdateNeed(ctx, &councilsv1.UpdateNeedRequest{Need: &councilsv1.CompetenceNeed{Name: n.GetName(), Headcount: 5},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"headcount"}}})
		wantCode(t, err, codes.FailedPrecondition)

		n, err = e.c.ApproveNeed(ctx, &councilsv1.ApproveNeedRequest{Name: n.GetName(), Priority: councilsv1.Priority_PRIORITY_HIGH, Reason: "Prioriterat av kompetensnavet"})
		if err != nil || n.GetState() != councilsv1.CompetenceNeed_STATE_APPROVED || n.GetPriority() != councilsv1.Priority_PRIORITY_HIGH {
			t.Fatalf("approve: %v %v", n, err)
		}
		_, err = e.c.RejectNeed(ctx, &councilsv1.RejectNeedRequest{Name: n.GetName(), Reason: "för sent"})
		wantCode(t, err, codes.FailedPrecondition)

		// The council cannot go while it has a need that is not closed;
		// programs read why from the PreconditionFailure.
		_, err = e.c.DeleteCouncil(ctx, &councilsv1.DeleteCouncilRequest{Name: c.GetName()})
		if v := testkit.WantPreconditionFailure(t, err, c.GetName()); !strings.Contains(v.GetDescription(), "still has needs") {
			t.Fatalf("violation %v", v)
		}

		n, err = e.c.StartNeedProcurement(ctx, &councilsv1.StartNeedProcurementRequest{Name: n.GetName(), Etag: n.GetEtag()})
		if err != nil || n.GetState() != councilsv1.CompetenceNeed_STATE_IN_PROCUREMENT {
			t.Fatalf("start procurement: %v %v", n, err)
		}
		n, err = e.c.FulfilNeed(ctx, &councilsv1.FulfilNeedRequest{Name: n.GetName()})
		if err != nil || n.GetState() != councilsv1.CompetenceNeed_STATE_FULFILLED {
			t.Fatalf("fulfil: %v %v", n, err)
		}
		n, err = e.c.CloseNeed(ctx, &councilsv1.CloseNeedRequest{Name: n.GetName(), Reason: "40 deltagare utbildade"})
		if err != nil || n.GetState() != councilsv1.CompetenceNeed_STATE_CLOSED || n.GetStateReason() != "40 deltagare utbildade" {
			t.Fatalf("close: %v %v", n, err)
		}
		_, err = e.c.CloseNeed(ctx, &councilsv1.CloseNeedRequest{Name: n.GetName()})
		wantCode(t, err, codes.FailedPrecondition)

		// A rejected need frees the council too.
		r := mustNeed(t, e, need(c.GetName()))
		if _, err := e.c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: r.GetName()}); err != nil {
			t.Fatal(err)
		}
		_, err = e.c.RejectNeed(ctx, &councilsv1.RejectNeedRequest{Name: r.GetName(), Reason: "Täcks redan av Arbetsförmedlingens utbud"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.DeleteCouncil(ctx, &councilsv1.DeleteCouncilRequest{Name: c.GetName()}); err != nil {
			t.Fatalf("delete council with only closed/rejected needs: %v", err)
		}
		_, err = e.c.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: c.GetName()})
		wantCode(t, err, codes.NotFound)
		// Its needs stay as the record.
		if got, err := e.c.GetNeed(ctx, &councilsv1.GetNeedRequest{Name: n.GetName()}); err != nil || got.GetState() != councilsv1.CompetenceNeed_STATE_CLOSED {
			t.Fatalf("closed need after council deletion: %v %v", got, err)
		}

		want := []string{"council.created", "need.created", "need.submitted", "need.approved", "need.procurement_started",
			"need.fulfilled", "need.closed", "need.created", "need.submitted", "need.rejected", "council.deleted"}
		if got := eventTypes(t, e); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("events\n got %v\nwant %v", got, want)
		}
	})
}

func TestEventEnvelope(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCouncil(t, e, "handel", commonv1.Sector_SECTOR_RETAIL)
		msgs, err := e.rdb.XRange(ctx, councils.Keyspace.Events(), "-", "+").Result()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%v %v", msgs, err)
		}
		var ev commonv1.Event
		if err := proto.Unmarshal([]byte(msgs[0].Values["event"].(string)), &ev); err != nil {
			t.Fatal(err)
		}
		var data councilsv1.SectorCouncil
		if err := ev.GetData().UnmarshalTo(&data); err != nil {
			t.Fatal(err)
		}
		if ev.GetType() != "kompetensnav.councils.v1.council.created" || ev.GetSubject() != c.GetName() ||
			ev.GetSource() != "/kompetensnav/councils" || ev.GetId() == "" || ev.GetTime() == nil || !proto.Equal(&data, c) {
			t.Fatalf("envelope %v", &ev)
		}
	})
}

func TestSubmitRefusesPastNeededBy(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCouncil(t, e, "besoksnaring", commonv1.Sector_SECTOR_HOSPITALITY)
		n := mustNeed(t, e, need(c.GetName()))
		e.clock.set(time.Date(2026, 9, 2, 8, 0, 0, 0, time.UTC)) // the day after needed_by
		_, err := e.c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: n.GetName()})
		st := wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "needed_by") {
			t.Fatal(st.Message())
		}
		// On the day itself (Swedish time) it is still fine.
		e.clock.set(time.Date(2026, 8, 31, 23, 30, 0, 0, time.UTC)) // 01:30 on 1 Sept in Stockholm
		if _, err := e.c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: n.GetName()}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStaleEtagIsAborted(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCouncil(t, e, "transport", commonv1.Sector_SECTOR_TRANSPORT)
		upd := func(etag, name string) error {
			_, err := e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{
				Council:    &councilsv1.SectorCouncil{Name: c.GetName(), DisplayName: name, Etag: etag},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
			})
			return err
		}
		if err := upd(c.GetEtag(), "Transportrådet"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, upd(c.GetEtag(), "Lost update"), codes.Aborted)
		got, _ := e.c.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: c.GetName()})
		if got.GetDisplayName() != "Transportrådet" {
			t.Fatalf("lost update: %v", got)
		}

		n := mustNeed(t, e, need(c.GetName()))
		old := n.GetEtag()
		if _, err := e.c.UpdateNeed(ctx, &councilsv1.UpdateNeedRequest{Need: &councilsv1.CompetenceNeed{Name: n.GetName(), Headcount: 12, Etag: old}}); err != nil {
			t.Fatal(err)
		}
		_, err := e.c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: n.GetName(), Etag: old})
		wantCode(t, err, codes.Aborted)
		_, err = e.c.UpdateNeed(ctx, &councilsv1.UpdateNeedRequest{Need: &councilsv1.CompetenceNeed{Name: n.GetName(), Headcount: 13, Etag: old}})
		wantCode(t, err, codes.Aborted)
	})
}

func TestUpdateMasks(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCouncil(t, e, "teknik", commonv1.Sector_SECTOR_TECH_INDUSTRY)
		// An empty mask updates what the request sets; the rest stays.
		got, err := e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: &councilsv1.SectorCouncil{
			Name: c.GetName(), Municipalities: []string{"1480", "1481"}}})
		if err != nil || got.GetDisplayName() != c.GetDisplayName() || len(got.GetMunicipalities()) != 2 || got.GetEtag() == c.GetEtag() {
			t.Fatalf("%v %v", got, err)
		}
		// An explicit path clears a field the request leaves empty.
		got, err = e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{
			Council:    &councilsv1.SectorCouncil{Name: c.GetName()},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"contact_email", "create_time"}}})
		if err != nil || got.GetContactEmail() != "" || !proto.Equal(got.GetCreateTime(), c.GetCreateTime()) {
			t.Fatalf("%v %v", got, err)
		}
		// Need municipalities must stay within the council's, now 1480 and 1481.
		n := mustNeed(t, e, &councilsv1.CreateNeedRequest{Parent: c.GetName(), Need: &councilsv1.CompetenceNeed{
			Title: "CNC", Headcount: 3, TargetGroups: []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_LAID_OFF}}})
		_, err = e.c.UpdateNeed(ctx, &councilsv1.UpdateNeedRequest{Need: &councilsv1.CompetenceNeed{Name: n.GetName(), Municipalities: []string{"1440"}}})
		testkit.WantBadRequest(t, err, "need.municipalities[0]")
	})
}

// badCase is one invalid request: it must fail with INVALID_ARGUMENT naming
// field, and write nothing.
type badCase struct {
	name  string
	field string
	call  func(e env) error
}

func TestBadInputNamesFieldAndWritesNothing(t *testing.T) {
	long := strings.Repeat("x", 201)
	mutCouncil := func(f func(r *councilsv1.CreateCouncilRequest)) func(e env) error {
		return func(e env) error {
			r := council("ny", commonv1.Sector_SECTOR_RETAIL)
			f(r)
			_, err := e.c.CreateCouncil(ctx, r)
			return err
		}
	}
	mutNeed := func(f func(r *councilsv1.CreateNeedRequest)) func(e env) error {
		return func(e env) error {
			r := need("councils/fordon")
			f(r)
			_, err := e.c.CreateNeed(ctx, r)
			return err
		}
	}
	cases := []badCase{
		{"council without display name", "council.display_name", mutCouncil(func(r *councilsv1.CreateCouncilRequest) { r.Council.DisplayName = "" })},
		{"council display name too long", "council.display_name", mutCouncil(func(r *councilsv1.CreateCouncilRequest) { r.Council.DisplayName = long })},
		{"council without sector", "council.sector", mutCouncil(func(r *councilsv1.CreateCouncilRequest) { r.Council.Sector = 0 })},
		{"council with unknown sector", "council.sector", mutCouncil(func(r *councilsv1.CreateCouncilRequest) { r.Council.Sector = 99 })},
		{"bad email", "council.contact_email", mutCouncil(func(r *councilsv1.CreateCouncilRequest) { r.Council.ContactEmail = "kansli at example" })},
		{"municipality not 4 digits", "council.municipalities[0]", mutCouncil(func(r *councilsv1.CreateCouncilRequest) { r.Council.Municipalities = []string{"148"} })},
		{"municipality not a real code", "council.municipalities[1]", mutCouncil(func(r *councilsv1.CreateCouncilRequest) { r.Council.Municipalities = []string{"1480", "1400"} })},
		{"duplicate municipality", "council.municipalities", mutCouncil(func(r *councilsv1.CreateCouncilRequest) { r.Council.Municipalities = []string{"1480", "1480"} })},
		{"bad council id", "council_id", mutCouncil(func(r *councilsv1.CreateCouncilRequest) { r.CouncilId = "Fordon_Rådet" })},
		{"bad request id", "request_id", mutCouncil(func(r *councilsv1.CreateCouncilRequest) { r.RequestId = "has space" })},
		{"council missing", "council", mutCouncil(func(r *councilsv1.CreateCouncilRequest) { r.Council = nil })},
		{"need without title", "need.title", mutNeed(func(r *councilsv1.CreateNeedRequest) { r.Need.Title = "" })},
		{"need headcount 0", "need.headcount", mutNeed(func(r *councilsv1.CreateNeedRequest) { r.Need.Headcount = 0 })},
		{"need headcount 10001", "need.headcount", mutNeed(func(r *councilsv1.CreateNeedRequest) { r.Need.Headcount = 10001 })},
		{"need without target group", "need.target_groups", mutNeed(func(r *councilsv1.CreateNeedRequest) { r.Need.TargetGroups = nil })},
		{"need with unspecified target group", "need.target_groups[0]", mutNeed(func(r *councilsv1.CreateNeedRequest) {
			r.Need.TargetGroups = []commonv1.TargetGroup{0}
		})},
		{"need municipality outside the council", "need.municipalities[1]", mutNeed(func(r *councilsv1.CreateNeedRequest) { r.Need.Municipalities = []string{"1480", "0180"} })},
		{"need needed_by not a date", "need.needed_by", mutNeed(func(r *councilsv1.CreateNeedRequest) { r.Need.NeededBy = &date.Date{Year: 2026, Month: 2, Day: 30} })},
		{"need needed_by without day", "need.needed_by", mutNeed(func(r *councilsv1.CreateNeedRequest) { r.Need.NeededBy = &date.Date{Year: 2026, Month: 2} })},
		{"need requested_by not a company", "need.requested_by", mutNeed(func(r *councilsv1.CreateNeedRequest) { r.Need.RequestedBy = "volvo" })},
		{"need unknown priority", "need.priority", mutNeed(func(r *councilsv1.CreateNeedRequest) { r.Need.Priority = 42 })},
		{"need bad parent", "parent", mutNeed(func(r *councilsv1.CreateNeedRequest) { r.Parent = "council/fordon" })},
		{"need bad id", "need_id", mutNeed(func(r *councilsv1.CreateNeedRequest) { r.NeedId = "-x" })},
		{"get bad name", "name", func(e env) error {
			_, err := e.c.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: "councils/Fordon"})
			return err
		}},
		{"reject without reason", "reason", func(e env) error {
			_, err := e.c.RejectNeed(ctx, &councilsv1.RejectNeedRequest{Name: "councils/fordon/needs/n1"})
			return err
		}},
		{"negative page size", "page_size", func(e env) error {
			_, err := e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: "councils/-", PageSize: -1})
			return err
		}},
		{"unknown filter field", "filter", func(e env) error {
			_, err := e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: "councils/-", Filter: "colour = RED"})
			return err
		}},
		{"bad filter syntax", "filter", func(e env) error {
			_, err := e.c.ListCouncils(ctx, &councilsv1.ListCouncilsRequest{Filter: "sector = "})
			return err
		}},
		{"unknown order field", "order_by", func(e env) error {
			_, err := e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: "councils/-", OrderBy: "title"})
			return err
		}},
		{"garbage page token", "page_token", func(e env) error {
			_, err := e.c.ListCouncils(ctx, &councilsv1.ListCouncilsRequest{PageToken: "abc"})
			return err
		}},
		{"update without council", "council", func(e env) error {
			_, err := e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{})
			return err
		}},
		{"update emptying display name", "council.display_name", func(e env) error {
			_, err := e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: &councilsv1.SectorCouncil{Name: "councils/fordon"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
			return err
		}},
		{"update unknown mask path", "update_mask", func(e env) error {
			_, err := e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: &councilsv1.SectorCouncil{Name: "councils/fordon"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"colour"}}})
			return err
		}},
		{"update council bad municipality", "council.municipalities[0]", func(e env) error {
			_, err := e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: &councilsv1.SectorCouncil{Name: "councils/fordon", Municipalities: []string{"0000"}}})
			return err
		}},
		{"update need headcount", "need.headcount", func(e env) error {
			_, err := e.c.UpdateNeed(ctx, &councilsv1.UpdateNeedRequest{Need: &councilsv1.CompetenceNeed{Name: "councils/fordon/needs/n1"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"headcount"}}})
			return err
		}},
		{"update need bad name", "need.name", func(e env) error {
			_, err := e.c.UpdateNeed(ctx, &councilsv1.UpdateNeedRequest{Need: &councilsv1.CompetenceNeed{Name: "needs/n1", Headcount: 3}})
			return err
		}},
	}
	each(t, func(t *testing.T, e env) {
		mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		n1 := need("councils/fordon")
		n1.NeedId = "n1"
		mustNeed(t, e, n1)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := testkit.KeyCount(t, e.rdb)
				events, _ := e.rdb.XLen(ctx, councils.Keyspace.Events()).Result()
				testkit.WantBadRequest(t, tc.call(e), tc.field)
				if after := testkit.KeyCount(t, e.rdb); after != before {
					t.Fatalf("keys %d → %d: a rejected request wrote", before, after)
				}
				if n, _ := e.rdb.XLen(ctx, councils.Keyspace.Events()).Result(); n != events {
					t.Fatal("a rejected request emitted an event")
				}
			})
		}
		// And the stored need is untouched by the rejected updates.
		got, err := e.c.GetNeed(ctx, &councilsv1.GetNeedRequest{Name: "councils/fordon/needs/n1"})
		if err != nil || got.GetHeadcount() != 40 {
			t.Fatalf("%v %v", got, err)
		}
	})
}

func TestCreateIsIdempotent(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		req := need(c.GetName())
		req.RequestId = "af-varsel-2026-0042"
		first := mustNeed(t, e, req)
		again := mustNeed(t, e, req)
		if !proto.Equal(first, again) {
			t.Fatalf("retry returned %v, first %v", again, first)
		}
		// Same id, different request: refused, nothing written.
		other := need(c.GetName())
		other.RequestId = req.RequestId
		other.Need.Headcount = 99
		_, err := e.c.CreateNeed(ctx, other)
		testkit.WantBadRequest(t, err, "request_id")

		// 50 concurrent creates with one request id create exactly one need.
		burst := need(c.GetName())
		burst.RequestId = "burst-1"
		var wg sync.WaitGroup
		names := make([]string, 50)
		for i := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := e.c.CreateNeed(ctx, burst)
				if err != nil {
					t.Error(err)
					return
				}
				names[i] = n.GetName()
			}()
		}
		wg.Wait()
		for _, n := range names {
			if n != names[0] {
				t.Fatalf("concurrent retries got different needs: %s and %s", names[0], n)
			}
		}
		list, err := e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: c.GetName()})
		if err != nil || len(list.GetNeeds()) != 2 || list.GetTotalSize() != 2 {
			t.Fatalf("want 2 needs (one per request id), got %d (%v)", len(list.GetNeeds()), err)
		}
		created := 0
		for _, typ := range eventTypes(t, e) {
			if typ == "need.created" {
				created++
			}
		}
		if created != 2 {
			t.Fatalf("%d need.created events, want 2", created)
		}

		// A council create is idempotent too, also with a generated id.
		cr := council("", commonv1.Sector_SECTOR_RETAIL)
		cr.RequestId = "0b8c1b9e-7f2a-4c59-9d1e-2f4f6c0e9a11"
		a, err := e.c.CreateCouncil(ctx, cr)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.c.CreateCouncil(ctx, cr)
		if err != nil || a.GetName() != b.GetName() {
			t.Fatalf("%v %v %v", a, b, err)
		}
		// Without a request id a client-chosen id that exists is ALREADY_EXISTS.
		_, err = e.c.CreateCouncil(ctx, council("fordon", commonv1.Sector_SECTOR_RETAIL))
		wantCode(t, err, codes.AlreadyExists)
	})
}

func TestConcurrentApproveExactlyOneWins(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		n := mustNeed(t, e, need(c.GetName()))
		if _, err := e.c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: n.GetName()}); err != nil {
			t.Fatal(err)
		}
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.c.ApproveNeed(ctx, &councilsv1.ApproveNeedRequest{Name: n.GetName()})
				switch status.Code(err) {
				case codes.OK:
					ok.Add(1)
				case codes.FailedPrecondition:
					refused.Add(1)
				default:
					t.Errorf("unexpected %v", err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != 49 {
			t.Fatalf("%d approvals succeeded, %d refused; want 1 and 49", ok.Load(), refused.Load())
		}
		approvals := 0
		for _, typ := range eventTypes(t, e) {
			if typ == "need.approved" {
				approvals++
			}
		}
		if approvals != 1 {
			t.Fatalf("%d need.approved events", approvals)
		}
	})
}

func TestDeleteCouncilRacesNeedCreation(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		for i := range 20 {
			id := fmt.Sprintf("rad-%d", i)
			c := mustCouncil(t, e, id, commonv1.Sector_SECTOR_OTHER)
			var wg sync.WaitGroup
			var delErr, needErr error
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, delErr = e.c.DeleteCouncil(ctx, &councilsv1.DeleteCouncilRequest{Name: c.GetName()})
			}()
			go func() { defer wg.Done(); _, needErr = e.c.CreateNeed(ctx, need(c.GetName())) }()
			wg.Wait()
			// Either the need landed first and the delete was refused, or
			// the council went first and the need found no council.
			switch {
			case delErr == nil && status.Code(needErr) == codes.NotFound:
			case needErr == nil && status.Code(delErr) == codes.FailedPrecondition:
			default:
				t.Fatalf("round %d: delete %v, create need %v", i, delErr, needErr)
			}
		}
	})
}

func TestPagination(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		var want []string
		for i := range 250 {
			r := need(c.GetName())
			r.NeedId = fmt.Sprintf("n%03d", i)
			r.Need.Priority = councilsv1.Priority(1 + i%4)
			want = append(want, mustNeed(t, e, r).GetName())
		}
		walk := func(parent string, size int32, orderBy string) []*councilsv1.CompetenceNeed {
			var got []*councilsv1.CompetenceNeed
			token := ""
			for page := 0; ; page++ {
				resp, err := e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: parent, PageSize: size, PageToken: token, OrderBy: orderBy})
				if err != nil {
					t.Fatal(err)
				}
				if resp.GetTotalSize() != 250 {
					t.Fatalf("total size %d", resp.GetTotalSize())
				}
				got = append(got, resp.GetNeeds()...)
				if token = resp.GetNextPageToken(); token == "" {
					return got
				}
				if page > 300 {
					t.Fatal("pagination does not end")
				}
			}
		}
		for _, size := range []int32{7, 50, 0, 1000} {
			got := walk("councils/-", size, "")
			if len(got) != len(want) {
				t.Fatalf("page size %d: %d needs, want %d", size, len(got), len(want))
			}
			for i := range want {
				if got[i].GetName() != want[i] {
					t.Fatalf("page size %d: position %d is %s, want %s", size, i, got[i].GetName(), want[i])
				}
			}
		}
		// priority desc, ties by name: every need once, never rising priority.
		got := walk(c.GetName(), 33, "priority desc")
		seen := map[string]bool{}
		for i, n := range got {
			if seen[n.GetName()] {
				t.Fatalf("%s twice", n.GetName())
			}
			seen[n.GetName()] = true
			if i > 0 && n.GetPriority() > got[i-1].GetPriority() {
				t.Fatalf("priority rises at %d", i)
			}
		}
		if len(seen) != 250 {
			t.Fatalf("%d distinct needs", len(seen))
		}

		first, err := e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: "councils/-", PageSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		tok := first.GetNextPageToken()
		tampered := []byte(tok)
		tampered[len(tampered)/3] ^= 0x01
		_, err = e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: "councils/-", PageSize: 10, PageToken: string(tampered)})
		testkit.WantBadRequest(t, err, "page_token")
		// A token is bound to its filter and order.
		_, err = e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: "councils/-", PageSize: 10, PageToken: tok, OrderBy: "priority"})
		wantCode(t, err, codes.InvalidArgument)
		_, err = e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: c.GetName(), PageSize: 10, PageToken: tok})
		wantCode(t, err, codes.InvalidArgument)
	})
}

func TestListFilters(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		fordon := mustCouncil(t, e, "fordon", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY)
		handel := mustCouncil(t, e, "handel", commonv1.Sector_SECTOR_RETAIL)
		a := need(fordon.GetName())
		a.NeedId, a.Need.Municipalities, a.Need.Priority = "a", []string{"1480"}, councilsv1.Priority_PRIORITY_CRITICAL
		b := need(fordon.GetName())
		b.NeedId, b.Need.Municipalities = "b", []string{"1440"}
		b.Need.NeededBy = &date.Date{Year: 2026, Month: 5, Day: 1}
		h := need(handel.GetName())
		h.NeedId, h.Need.Municipalities = "h", nil // all of the council's 13
		for _, r := range []*councilsv1.CreateNeedRequest{a, b, h} {
			mustNeed(t, e, r)
		}
		if _, err := e.c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: "councils/fordon/needs/b"}); err != nil {
			t.Fatal(err)
		}
		names := func(filter, order string) string {
			resp, err := e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: "councils/-", Filter: filter, OrderBy: order})
			if err != nil {
				t.Fatalf("%q: %v", filter, err)
			}
			var out []string
			for _, n := range resp.GetNeeds() {
				out = append(out, n.GetName()[len(n.GetName())-1:])
			}
			return strings.Join(out, ",")
		}
		for _, tc := range []struct{ filter, order, want string }{
			{"", "", "a,b,h"},
			{"state = STATE_SUBMITTED", "", "b"},
			{"state != STATE_SUBMITTED", "", "a,h"},
			{"priority = PRIORITY_CRITICAL", "", "a"},
			{"sector = SECTOR_RETAIL", "", "h"},
			{`municipalities:"1480"`, "", "a,h"},
			{`municipalities:"1440" AND sector = SECTOR_VEHICLE_INDUSTRY`, "", "b"},
			{`state = STATE_SUBMITTED OR priority = PRIORITY_CRITICAL`, "", "a,b"},
			{`NOT sector = SECTOR_RETAIL`, "", "a,b"},
			{"", "neededBy", "b,a,h"},
			{"", "priority desc", "a,b,h"},
		} {
			if got := names(tc.filter, tc.order); got != tc.want {
				t.Errorf("filter %q order %q: got %s, want %s", tc.filter, tc.order, got, tc.want)
			}
		}
		resp, err := e.c.ListCouncils(ctx, &councilsv1.ListCouncilsRequest{Filter: "sector = SECTOR_RETAIL"})
		if err != nil || len(resp.GetCouncils()) != 1 || resp.GetCouncils()[0].GetName() != "councils/handel" {
			t.Fatalf("%v %v", resp, err)
		}
		_, err = e.c.ListNeeds(ctx, &councilsv1.ListNeedsRequest{Parent: "councils/nosuch"})
		wantCode(t, err, codes.NotFound)
	})
}

func TestMissingResourcesAndStaleDelete(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		_, err := e.c.CreateNeed(ctx, need("councils/nosuch"))
		wantCode(t, err, codes.NotFound)
		_, err = e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: &councilsv1.SectorCouncil{Name: "councils/nosuch", DisplayName: "X"}})
		wantCode(t, err, codes.NotFound)
		_, err = e.c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: "councils/nosuch/needs/n1"})
		wantCode(t, err, codes.NotFound)
		_, err = e.c.DeleteCouncil(ctx, &councilsv1.DeleteCouncilRequest{Name: "councils/nosuch"})
		wantCode(t, err, codes.NotFound)

		c := mustCouncil(t, e, "handel", commonv1.Sector_SECTOR_RETAIL)
		if _, err := e.c.UpdateCouncil(ctx, &councilsv1.UpdateCouncilRequest{Council: &councilsv1.SectorCouncil{Name: c.GetName(), DisplayName: "Handelsrådet"}}); err != nil {
			t.Fatal(err)
		}
		_, err = e.c.DeleteCouncil(ctx, &councilsv1.DeleteCouncilRequest{Name: c.GetName(), Etag: c.GetEtag()})
		wantCode(t, err, codes.Aborted)
		if _, err := e.c.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: c.GetName()}); err != nil {
			t.Fatalf("a refused delete removed the council: %v", err)
		}
	})
}
