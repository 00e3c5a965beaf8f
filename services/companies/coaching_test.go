package companies_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func hold(e env, name string) (*companiesv1.CoachingSession, error) {
	e.clock.tick()
	return e.c.HoldCoachingSession(ctx, &companiesv1.HoldCoachingSessionRequest{Name: name})
}

// The four conversations are held in order, each once: 2 before 1 is
// FAILED_PRECONDITION naming conversation 1, 1–4 in order work, a second
// 3 is ALREADY_EXISTS (held or planned).
func TestCoachingConversationsInOrder(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCompany(t, e, company("volvo", "556012-5790"))
		var sessions []*companiesv1.CoachingSession
		for n := int32(1); n <= 4; n++ {
			s := mustSession(t, e, session(c.GetName(), fmt.Sprintf("samtal-%d", n), n))
			if s.GetState() != companiesv1.CoachingSession_STATE_PLANNED || s.GetConversation() != n {
				t.Fatalf("planned %v", s)
			}
			sessions = append(sessions, s)
		}
		before := digest(t, e.rdb)
		_, err := hold(e, sessions[1].GetName())
		st := wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "before conversation 1 has been") {
			t.Fatalf("message %q", st.Message())
		}
		var pf *errdetails.PreconditionFailure
		for _, d := range st.Details() {
			if p, ok := d.(*errdetails.PreconditionFailure); ok {
				pf = p
			}
		}
		if len(pf.GetViolations()) != 1 || pf.GetViolations()[0].GetDescription() != "conversation 1 has not been held" {
			t.Fatalf("PreconditionFailure %v", pf)
		}
		unchanged(t, e, before)

		for i, s := range sessions {
			held, err := hold(e, s.GetName())
			if err != nil {
				t.Fatalf("conversation %d: %v", i+1, err)
			}
			if held.GetState() != companiesv1.CoachingSession_STATE_HELD || held.GetHeldOn().GetDay() != 20 {
				t.Fatalf("held %v", held)
			}
		}
		// Another conversation 3: refused when planned, as holding it would be.
		_, err = e.c.CreateCoachingSession(ctx, session(c.GetName(), "samtal-3b", 3))
		if st := wantCode(t, err, codes.AlreadyExists); !strings.Contains(st.Message(), "conversation 3") {
			t.Fatalf("message %q", st.Message())
		}
		// Holding one twice is the state's business.
		_, err = hold(e, sessions[2].GetName())
		wantCode(t, err, codes.FailedPrecondition)

		list, err := e.c.ListCoachingSessions(ctx, &companiesv1.ListCoachingSessionsRequest{Parent: c.GetName()})
		if err != nil || len(list.GetCoachingSessions()) != 4 {
			t.Fatalf("list %v, %v", list, err)
		}
		for i, s := range list.GetCoachingSessions() {
			if s.GetConversation() != int32(i+1) {
				t.Fatalf("list out of order: %v", list)
			}
		}
		if got := eventTypes(t, e); !containsInOrder(got, "coaching_session.created", "coaching_session.held", "coaching_session.held",
			"coaching_session.held", "coaching_session.held") {
			t.Fatalf("events %v", got)
		}
	})
}

// A company's sessions are listed in conversation order whatever order
// they were planned in, a cancelled one beside the one held in its place,
// page by page.
func TestCoachingSessionsListInConversationOrder(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCompany(t, e, company("volvo", "556012-5790"))
		other := mustCompany(t, e, company("annat", orgNumber(1)))
		mustSession(t, e, session(other.GetName(), "x", 1))
		for _, n := range []int32{4, 2, 1, 3, 2} {
			mustSession(t, e, session(c.GetName(), fmt.Sprintf("s-%d-%d", n, e.clock.now().UnixMilli()%1000), n))
		}
		var got []int32
		token := ""
		for {
			page, err := e.c.ListCoachingSessions(ctx, &companiesv1.ListCoachingSessionsRequest{Parent: c.GetName(), PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page.GetCoachingSessions() {
				got = append(got, s.GetConversation())
			}
			if token = page.GetNextPageToken(); token == "" {
				break
			}
		}
		if fmt.Sprint(got) != "[1 2 2 3 4]" {
			t.Fatalf("order %v", got)
		}
		_, err := e.c.ListCoachingSessions(ctx, &companiesv1.ListCoachingSessionsRequest{Parent: "companies/nowhere"})
		wantCode(t, err, codes.NotFound)
	})
}

// Two sessions of conversation 1 held at once (and ten): exactly one is
// held, the others ALREADY_EXISTS and still planned.
func TestConcurrentHoldsOfOneConversation(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		for round, n := range []int{2, 10} {
			c := mustCompany(t, e, company(fmt.Sprintf("c%d", round), orgNumber(round)))
			var names []string
			for i := range n {
				names = append(names, mustSession(t, e, session(c.GetName(), fmt.Sprintf("ett-%d", i), 1)).GetName())
			}
			var heldCount, exists atomic.Int64
			var wg sync.WaitGroup
			for _, name := range names {
				wg.Go(func() {
					_, err := e.c.HoldCoachingSession(ctx, &companiesv1.HoldCoachingSessionRequest{Name: name})
					switch status.Code(err) {
					case codes.OK:
						heldCount.Add(1)
					case codes.AlreadyExists:
						exists.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if heldCount.Load() != 1 || exists.Load() != int64(n-1) {
				t.Fatalf("%d concurrent holds: %d held, %d refused", n, heldCount.Load(), exists.Load())
			}
			list, err := e.c.ListCoachingSessions(ctx, &companiesv1.ListCoachingSessionsRequest{Parent: c.GetName()})
			if err != nil {
				t.Fatal(err)
			}
			states := map[companiesv1.CoachingSession_State]int{}
			for _, s := range list.GetCoachingSessions() {
				states[s.GetState()]++
			}
			if states[companiesv1.CoachingSession_STATE_HELD] != 1 || states[companiesv1.CoachingSession_STATE_PLANNED] != n-1 {
				t.Fatalf("states %v", states)
			}
		}
	})
}

// Holding records the day (not in the future), the notes and the agreed
// actions; cancelling keeps the reason; neither works twice.
func TestHoldAndCancel(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCompany(t, e, company("volvo", "556012-5790"))
		s1 := mustSession(t, e, session(c.GetName(), "samtal-1", 1))
		before := digest(t, e.rdb)
		_, err := e.c.HoldCoachingSession(ctx, &companiesv1.HoldCoachingSessionRequest{Name: s1.GetName(), HeldOn: day(2026, 11, 26)})
		testkit.WantBadRequest(t, err, "held_on")
		_, err = e.c.HoldCoachingSession(ctx, &companiesv1.HoldCoachingSessionRequest{Name: s1.GetName(), HeldOn: day(2026, 2, 30)})
		testkit.WantBadRequest(t, err, "held_on")
		_, err = e.c.HoldCoachingSession(ctx, &companiesv1.HoldCoachingSessionRequest{Name: s1.GetName(), Etag: "0000000000000000"})
		wantCode(t, err, codes.Aborted)
		unchanged(t, e, before)
		held, err := e.c.HoldCoachingSession(ctx, &companiesv1.HoldCoachingSessionRequest{Name: s1.GetName(), HeldOn: day(2026, 11, 24),
			Notes: "Nuläge: 800 anställda, elektrifiering.\nBehov: högvoltsbehörighet.", AgreedActions: []string{"Kartlägga montörernas kompetens"}})
		if err != nil {
			t.Fatal(err)
		}
		if held.GetHeldOn().GetDay() != 24 || !strings.Contains(held.GetNotes(), "högvolt") || len(held.GetAgreedActions()) != 1 {
			t.Fatalf("held %v", held)
		}
		_, err = e.c.CancelCoachingSession(ctx, &companiesv1.CancelCoachingSessionRequest{Name: s1.GetName()})
		if st := wantCode(t, err, codes.FailedPrecondition); !strings.Contains(st.Message(), "STATE_HELD") {
			t.Fatalf("message %q", st.Message())
		}
		// A planned day in the future becomes today when it is held early.
		s2 := session(c.GetName(), "samtal-2", 2)
		s2.CoachingSession.HeldOn = day(2026, 12, 10)
		planned := mustSession(t, e, s2)
		early, err := hold(e, planned.GetName())
		if err != nil || early.GetHeldOn().GetMonth() != 11 || early.GetHeldOn().GetDay() != 25 {
			t.Fatalf("held early %v, %v", early, err)
		}
		s3 := mustSession(t, e, session(c.GetName(), "samtal-3", 3))
		cancelled, err := e.c.CancelCoachingSession(ctx, &companiesv1.CancelCoachingSessionRequest{Name: s3.GetName(), Reason: "Flyttas till januari"})
		if err != nil || cancelled.GetState() != companiesv1.CoachingSession_STATE_CANCELLED || cancelled.GetStateReason() != "Flyttas till januari" {
			t.Fatalf("cancelled %v, %v", cancelled, err)
		}
		_, err = hold(e, s3.GetName())
		wantCode(t, err, codes.FailedPrecondition)
		// A cancelled 3 does not stand in the way of another.
		mustSession(t, e, session(c.GetName(), "samtal-3-igen", 3))
	})
}

// The coach is a name or a role, never a personnummer; the session's
// other fields have their limits.
func TestCoachingSessionFields(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		c := mustCompany(t, e, company("volvo", "556012-5790"))
		before := digest(t, e.rdb)
		for _, tc := range []struct {
			edit  func(*companiesv1.CoachingSession)
			field string
		}{
			{func(s *companiesv1.CoachingSession) { s.Coach = "Anna 121212-1212" }, "coaching_session.coach"},
			{func(s *companiesv1.CoachingSession) { s.Coach = "191212121212" }, "coaching_session.coach"},
			// A mistyped one (wrong check digit) is personal data all the same.
			{func(s *companiesv1.CoachingSession) { s.Coach = "Anna 121212-1213" }, "coaching_session.coach"},
			{func(s *companiesv1.CoachingSession) { s.Conversation = 5 }, "coaching_session.conversation"},
			{func(s *companiesv1.CoachingSession) { s.Conversation = 0 }, "coaching_session.conversation"},
			{func(s *companiesv1.CoachingSession) { s.Notes = strings.Repeat("x", 10_001) }, "coaching_session.notes"},
			{func(s *companiesv1.CoachingSession) { s.HeldOn = day(2026, 13, 1) }, "coaching_session.held_on"},
		} {
			req := session(c.GetName(), "s", 1)
			tc.edit(req.CoachingSession)
			_, err := e.c.CreateCoachingSession(ctx, req)
			testkit.WantBadRequest(t, err, tc.field)
		}
		unchanged(t, e, before)
		// An organisation number or a phone number is no personnummer.
		req := session(c.GetName(), "ok", 1)
		req.CoachingSession.Coach = "Coach hos 556012-5790, tel 031-123 45 67"
		mustSession(t, e, req)
	})
}
