package procurement_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func accept(e env, name, provider string) (*procurementv1.CallOff, error) {
	return e.c.AcceptCallOff(ctx, &procurementv1.AcceptCallOffRequest{Name: name, Provider: provider})
}

func decline(e env, name, provider string) (*procurementv1.CallOff, error) {
	e.clock.tick()
	return e.c.DeclineCallOff(ctx, &procurementv1.DeclineCallOffRequest{Name: name, Provider: provider, Reason: "Fullbokade i vår"})
}

func TestRankOrderFallsThroughDeclines(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		activeAgreement(t, e, "teknik", rank, 1_000_000)
		need := approvedNeed(e)
		c := mustCallOff(t, e, callOffReq("svets-1", "frameworkAgreements/teknik", "svets", need, 150_000))
		if c.GetState() != procurementv1.CallOff_STATE_OFFERED || c.GetProvider() != "providers/a" || c.GetAwardMethod() != rank ||
			c.GetTitle() != "Svetsning med robot" || len(c.GetRankedProviders()) != 3 || len(c.GetOffers()) != 1 {
			t.Fatalf("created %v", c)
		}
		// Only the offeree answers: b cannot accept a's offer.
		_, err := accept(e, c.GetName(), "providers/b")
		wantCode(t, err, codes.PermissionDenied)

		c, err = decline(e, c.GetName(), "providers/a")
		if err != nil || c.GetProvider() != "providers/b" || c.GetState() != procurementv1.CallOff_STATE_OFFERED {
			t.Fatalf("after one decline: %v %v", c, err)
		}
		c, err = decline(e, c.GetName(), "") // staff on b's behalf
		if err != nil || c.GetProvider() != "providers/c" || c.GetState() != procurementv1.CallOff_STATE_OFFERED {
			t.Fatalf("after two declines: %v %v", c, err)
		}
		if got := c.GetInvitedProviders(); strings.Join(got, ",") != "providers/a,providers/b,providers/c" {
			t.Fatalf("invited %v", got)
		}
		// The third provider accepts, as itself.
		e.clock.tick()
		c, err = e.c.AcceptCallOff(testkit.AsRole(ctx, auth.Provider, "providers/c"),
			&procurementv1.AcceptCallOffRequest{Name: c.GetName(), Provider: "providers/c"})
		if err != nil || c.GetState() != procurementv1.CallOff_STATE_AWARDED || c.GetProvider() != "providers/c" ||
			c.GetAwardValue().GetUnits() != 150_000 || c.GetAwardTime() == nil {
			t.Fatalf("accept: %v %v", c, err)
		}
		outcomes := []string{}
		for _, o := range c.GetOffers() {
			outcomes = append(outcomes, fmt.Sprintf("%d:%s:%s", o.GetRank(), o.GetProvider(), o.GetOutcome()))
		}
		if strings.Join(outcomes, " ") != "1:providers/a:OUTCOME_DECLINED 2:providers/b:OUTCOME_DECLINED 3:providers/c:OUTCOME_ACCEPTED" {
			t.Fatalf("offers %v", outcomes)
		}
		a, _ := e.c.GetFrameworkAgreement(ctx, &procurementv1.GetFrameworkAgreementRequest{Name: "frameworkAgreements/teknik"})
		if a.GetAwardedValue().GetUnits() != 150_000 {
			t.Fatalf("awarded value %v", a.GetAwardedValue())
		}
		// Awarded is final.
		_, err = decline(e, c.GetName(), "")
		wantCode(t, err, codes.FailedPrecondition)
		_, err = e.c.CancelCallOff(ctx, &procurementv1.CancelCallOffRequest{Name: c.GetName(), Reason: "x"})
		wantCode(t, err, codes.FailedPrecondition)

		// Everyone declines: NO_PROVIDER, nothing awarded.
		d := mustCallOff(t, e, callOffReq("svets-2", "frameworkAgreements/teknik", "svets", approvedNeed(e), 10_000))
		for range 3 {
			if d, err = decline(e, d.GetName(), ""); err != nil {
				t.Fatal(err)
			}
		}
		if d.GetState() != procurementv1.CallOff_STATE_NO_PROVIDER || d.GetProvider() != "" || d.GetStateReason() == "" {
			t.Fatalf("all declined: %v", d)
		}
		_, err = accept(e, d.GetName(), "")
		wantCode(t, err, codes.FailedPrecondition)

		// A call-off is cancelled before award, withdrawing its offer.
		x := mustCallOff(t, e, callOffReq("svets-3", "frameworkAgreements/teknik", "svets", approvedNeed(e), 10_000))
		x, err = e.c.CancelCallOff(ctx, &procurementv1.CancelCallOffRequest{Name: x.GetName(), Reason: "Behovet täcks av annat projekt"})
		if err != nil || x.GetState() != procurementv1.CallOff_STATE_CANCELLED || x.GetOffers()[0].GetOutcome() != procurementv1.Offer_OUTCOME_WITHDRAWN {
			t.Fatalf("cancel: %v %v", x, err)
		}
		a, _ = e.c.GetFrameworkAgreement(ctx, &procurementv1.GetFrameworkAgreementRequest{Name: "frameworkAgreements/teknik"})
		if a.GetAwardedValue().GetUnits() != 150_000 {
			t.Fatalf("awarded value after the rest %v", a.GetAwardedValue())
		}
		want := "call_off.created call_off.declined call_off.declined call_off.awarded call_off.created call_off.declined call_off.declined call_off.no_provider call_off.created call_off.cancelled"
		types := eventTypes(t, e)
		if got := strings.Join(types[len(types)-10:], " "); got != want {
			t.Fatalf("events %s", got)
		}
		// Listed by state, need and the providers it went to.
		for _, q := range []struct {
			req  *procurementv1.ListCallOffsRequest
			want int
		}{
			{&procurementv1.ListCallOffsRequest{Filter: "state = STATE_AWARDED"}, 1},
			{&procurementv1.ListCallOffsRequest{Filter: fmt.Sprintf("need = %q", need)}, 1},
			{&procurementv1.ListCallOffsRequest{Provider: "providers/c"}, 2},
			{&procurementv1.ListCallOffsRequest{Provider: "providers/a"}, 3},
			{&procurementv1.ListCallOffsRequest{Provider: "providers/-"}, 3},
			{&procurementv1.ListCallOffsRequest{Filter: `provider = "providers/c"`}, 1},
		} {
			list, err := e.c.ListCallOffs(ctx, q.req)
			if err != nil || len(list.GetCallOffs()) != q.want {
				t.Fatalf("%v: %d call-offs (%v), want %d", q.req, len(list.GetCallOffs()), err, q.want)
			}
		}
	})
}

func TestCreateCallOffIsIdempotent(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		activeAgreement(t, e, "teknik", rank, 1_000_000)
		req := callOffReq("", "frameworkAgreements/teknik", "svets", approvedNeed(e), 10_000)
		req.RequestId = "8c1d7e0a-1f2b-4c3d-9e8f-0a1b2c3d4e5f"
		first := mustCallOff(t, e, req)
		again := mustCallOff(t, e, req)
		if first.GetName() != again.GetName() || first.GetEtag() != again.GetEtag() {
			t.Fatalf("retry made another: %s, %s", first.GetName(), again.GetName())
		}
		// Still the first result once the need has moved on (and the
		// councils service is not even asked).
		e.councils.put(req.CallOff.Need, councilsv1.CompetenceNeed_STATE_IN_PROCUREMENT)
		calls := e.councils.calls.Load()
		if again := mustCallOff(t, e, req); again.GetName() != first.GetName() || e.councils.calls.Load() != calls {
			t.Fatalf("retry after the need moved: %v", again)
		}
		req.CallOff.Specification.Days = 2
		_, err := e.c.CreateCallOff(ctx, req)
		testkit.WantBadRequest(t, err, "request_id")
		list, _ := e.c.ListCallOffs(ctx, &procurementv1.ListCallOffsRequest{})
		if len(list.GetCallOffs()) != 1 {
			t.Fatalf("%d call-offs", len(list.GetCallOffs()))
		}
	})
}

func bidReq(callOff, provider string, price int64, quality int32) *procurementv1.CreateBidRequest {
	return &procurementv1.CreateBidRequest{Parent: callOff, Bid: &procurementv1.Bid{
		Provider: provider, Price: sekOf(price), QualityScore: quality, ProposedStart: day(2026, 5, 4)}}
}

// The scoring on a hand-computed example. Weights: price 60, quality 40;
// the lowest price is 80 000 SEK.
//
//	provider (rank)  price    quality  price part        quality part  score
//	c (3)            80 000   60       60·80/80 = 60     40·0.6 = 24   84
//	a (1)           100 000   50       60·80/100 = 48    40·0.5 = 20   68
//	b (2)           100 000   90       48                40·0.9 = 36   84
//
// b and c tie at 84; b is ranked higher and wins, although c bid first.
func TestMiniCompetitionScoring(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		activeAgreement(t, e, "teknik", mini, 1_000_000)
		deadline := start.Add(7 * 24 * time.Hour)
		req := callOffReq("robot", "frameworkAgreements/teknik", "svets", approvedNeed(e), 120_000)
		req.CallOff.BidDeadline = ts(deadline)
		c := mustCallOff(t, e, req)
		if c.GetState() != procurementv1.CallOff_STATE_TENDERING || c.GetAwardMethod() != mini || c.GetProvider() != "" ||
			len(c.GetInvitedProviders()) != 3 {
			t.Fatalf("created %v", c)
		}
		placed := []struct {
			provider string
			price    int64
			quality  int32
		}{{"providers/c", 80_000, 60}, {"providers/a", 100_000, 50}}
		for _, p := range placed {
			e.clock.tick()
			if _, err := e.c.CreateBid(testkit.AsRole(ctx, auth.Provider, p.provider), bidReq(c.GetName(), p.provider, p.price, p.quality)); err != nil {
				t.Fatal(err)
			}
		}
		// One bid each; only the lot's providers; at most the value.
		_, err := e.c.CreateBid(ctx, bidReq(c.GetName(), "providers/a", 90_000, 50))
		wantCode(t, err, codes.AlreadyExists)
		_, err = e.c.CreateBid(ctx, bidReq(c.GetName(), "providers/centre", 90_000, 50))
		st := wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "not a provider of lot svets") {
			t.Fatalf("message: %s", st.Message())
		}
		_, err = e.c.CreateBid(ctx, bidReq(c.GetName(), "providers/b", 120_001, 50))
		testkit.WantBadRequest(t, err, "bid.price")
		// A provider bids only as itself.
		_, err = e.c.CreateBid(testkit.AsRole(ctx, auth.Provider, "providers/a"), bidReq(c.GetName(), "providers/b", 100_000, 90))
		wantCode(t, err, codes.PermissionDenied)

		// Before the deadline, and with a provider yet to bid: not yet.
		_, err = e.c.AwardCallOff(ctx, &procurementv1.AwardCallOffRequest{Name: c.GetName()})
		st = wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "2 of 3") {
			t.Fatalf("message: %s", st.Message())
		}
		e.clock.tick()
		last := bidReq(c.GetName(), "providers/b", 100_000, 90)
		last.RequestId = "bud-b-1"
		if _, err := e.c.CreateBid(ctx, last); err != nil {
			t.Fatal(err)
		}
		// Every provider has bid: the award may come before the deadline.
		c, err = e.c.AwardCallOff(ctx, &procurementv1.AwardCallOffRequest{Name: c.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		if c.GetState() != procurementv1.CallOff_STATE_AWARDED || c.GetProvider() != "providers/b" ||
			c.GetWinningBid() != "callOffs/robot/bids/b" || c.GetAwardValue().GetUnits() != 100_000 || c.GetBidCount() != 3 {
			t.Fatalf("awarded %v", c)
		}
		bids, err := e.c.ListBids(ctx, &procurementv1.ListBidsRequest{Parent: c.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range bids.GetBids() {
			got = append(got, fmt.Sprintf("%s:%d:%g:%v", b.GetProvider(), b.GetRank(), b.GetScore(), b.GetWinner()))
		}
		if strings.Join(got, " ") != "providers/a:1:68:false providers/b:2:84:true providers/c:3:84:false" {
			t.Fatalf("bids %v", got)
		}
		// A retried bid returns the first, even after the award.
		if again, err := e.c.CreateBid(ctx, last); err != nil || again.GetName() != "callOffs/robot/bids/b" || !again.GetWinner() {
			t.Fatalf("retried bid: %v %v", again, err)
		}
		// A provider lists its own bid and nothing else.
		own, err := e.c.ListBids(testkit.AsRole(ctx, auth.Provider, "providers/c"),
			&procurementv1.ListBidsRequest{Parent: c.GetName(), Provider: "providers/-"})
		if err != nil || len(own.GetBids()) != 1 || own.GetBids()[0].GetProvider() != "providers/c" {
			t.Fatalf("own bids: %v %v", own, err)
		}
		a, _ := e.c.GetFrameworkAgreement(ctx, &procurementv1.GetFrameworkAgreementRequest{Name: "frameworkAgreements/teknik"})
		if a.GetAwardedValue().GetUnits() != 100_000 {
			t.Fatalf("awarded value %v (the winning price counts)", a.GetAwardedValue())
		}

		// After the deadline no bid is taken; the award then goes to who
		// bid, or to nobody.
		late := callOffReq("sen", "frameworkAgreements/teknik", "svets", approvedNeed(e), 50_000)
		late.CallOff.BidDeadline = ts(deadline)
		l := mustCallOff(t, e, late)
		empty := callOffReq("tom", "frameworkAgreements/teknik", "svets", approvedNeed(e), 50_000)
		empty.CallOff.BidDeadline = ts(deadline)
		none := mustCallOff(t, e, empty)
		if _, err := e.c.CreateBid(ctx, bidReq(l.GetName(), "providers/c", 40_000, 70)); err != nil {
			t.Fatal(err)
		}
		e.clock.set(deadline)
		_, err = e.c.CreateBid(ctx, bidReq(l.GetName(), "providers/a", 30_000, 90))
		st = wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "deadline") {
			t.Fatalf("message: %s", st.Message())
		}
		l, err = e.c.AwardCallOff(ctx, &procurementv1.AwardCallOffRequest{Name: l.GetName()})
		if err != nil || l.GetProvider() != "providers/c" || l.GetAwardValue().GetUnits() != 40_000 {
			t.Fatalf("award after the deadline: %v %v", l, err)
		}
		none, err = e.c.AwardCallOff(ctx, &procurementv1.AwardCallOffRequest{Name: none.GetName()})
		if err != nil || none.GetState() != procurementv1.CallOff_STATE_NO_PROVIDER {
			t.Fatalf("award without bids: %v %v", none, err)
		}
	})
}

// The ceiling under concurrency: 100 awards at once at an agreement with
// room for exactly 10. The check and the running total are one atomic
// step in Redis, so exactly 10 are awarded and the total is exact.
func TestCeilingHoldsUnderConcurrentAwards(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		activeAgreement(t, e, "teknik", rank, 1_000_000)
		const n, value = 100, 100_000
		names := make([]string, n)
		for i := range n {
			names[i] = mustCallOff(t, e, callOffReq(fmt.Sprintf("c%03d", i), "frameworkAgreements/teknik", "svets", approvedNeed(e), value)).GetName()
		}
		var mu sync.Mutex
		codesSeen := map[codes.Code]int{}
		var refusal error
		var wg sync.WaitGroup
		for _, name := range names {
			wg.Go(func() {
				_, err := accept(e, name, "")
				mu.Lock()
				defer mu.Unlock()
				codesSeen[status.Code(err)]++
				if err != nil {
					refusal = err
				}
			})
		}
		wg.Wait()
		if codesSeen[codes.OK] != 10 || codesSeen[codes.FailedPrecondition] != 90 {
			t.Fatalf("outcomes %v, want 10 OK and 90 FAILED_PRECONDITION", codesSeen)
		}
		a, err := e.c.GetFrameworkAgreement(ctx, &procurementv1.GetFrameworkAgreementRequest{Name: "frameworkAgreements/teknik"})
		if err != nil || a.GetAwardedValue().GetUnits() != 1_000_000 || a.GetAwardedValue().GetNanos() != 0 {
			t.Fatalf("awarded value %v (%v)", a.GetAwardedValue(), err)
		}
		list, _ := e.c.ListCallOffs(ctx, &procurementv1.ListCallOffsRequest{Filter: "state = STATE_AWARDED", PageSize: 1000})
		if len(list.GetCallOffs()) != 10 {
			t.Fatalf("%d awarded", len(list.GetCallOffs()))
		}
		awards := 0
		for _, typ := range eventTypes(t, e) {
			if typ == "call_off.awarded" {
				awards++
			}
		}
		if awards != 10 {
			t.Fatalf("%d award events", awards)
		}
		// The refusal names the agreement and what remains.
		st := status.Convert(refusal)
		if !strings.Contains(st.Message(), "frameworkAgreements/teknik has 0,00 SEK left") {
			t.Fatalf("refusal: %s", st.Message())
		}
		var pf *errdetails.PreconditionFailure
		for _, d := range st.Details() {
			if p, ok := d.(*errdetails.PreconditionFailure); ok {
				pf = p
			}
		}
		if pf == nil || pf.GetViolations()[0].GetType() != "CEILING" || pf.GetViolations()[0].GetSubject() != "frameworkAgreements/teknik" {
			t.Fatalf("details %v", st.Details())
		}
	})
}

func TestAwardsOnlyWithinTheValidity(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		activeAgreement(t, e, "teknik", rank, 1_000_000)
		c := mustCallOff(t, e, callOffReq("sent", "frameworkAgreements/teknik", "svets", approvedNeed(e), 10_000))
		// The agreement's last day is 2029-12-31; on 1 January it expired.
		e.clock.set(time.Date(2029, 12, 31, 23, 30, 0, 0, time.UTC))
		before := digest(t, e.rdb)
		_, err := accept(e, c.GetName(), "")
		st := wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "frameworkAgreements/teknik expired") {
			t.Fatalf("message: %s", st.Message())
		}
		if digest(t, e.rdb) != before {
			t.Fatal("the refused award wrote")
		}
		late := callOffReq("ny", "frameworkAgreements/teknik", "svets", approvedNeed(e), 10_000)
		late.CallOff.Specification.LatestStart = day(2030, 3, 1)
		_, err = e.c.CreateCallOff(ctx, late)
		wantCode(t, err, codes.FailedPrecondition)

		// Nor before its first day.
		e.clock.set(start)
		later := agreementReq("senare", rank, 1000)
		later.FrameworkAgreement.ValidFrom, later.FrameworkAgreement.ValidUntil = day(2026, 6, 1), day(2027, 5, 31)
		if _, err := e.c.CreateFrameworkAgreement(ctx, later); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.ActivateFrameworkAgreement(ctx, &procurementv1.ActivateFrameworkAgreementRequest{Name: "frameworkAgreements/senare"}); err != nil {
			t.Fatal(err)
		}
		_, err = e.c.CreateCallOff(ctx, callOffReq("tidigt", "frameworkAgreements/senare", "svets", approvedNeed(e), 100))
		st = wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "valid from 2026-06-01") {
			t.Fatalf("message: %s", st.Message())
		}
		// A terminated agreement refuses the award of a call-off made before.
		if _, err := e.c.TerminateFrameworkAgreement(ctx, &procurementv1.TerminateFrameworkAgreementRequest{Name: "frameworkAgreements/teknik", Reason: "Avslutat"}); err != nil {
			t.Fatal(err)
		}
		_, err = accept(e, c.GetName(), "")
		st = wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "STATE_TERMINATED") {
			t.Fatalf("message: %s", st.Message())
		}
	})
}

// Without the councils service no call-off can be made: UNAVAILABLE,
// saying nothing was written, and nothing is.
func TestCallOffWhenCouncilsIsDown(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		activeAgreement(t, e, "teknik", rank, 1_000_000)
		need := approvedNeed(e)
		e.councils.stop()
		before := digest(t, e.rdb)
		_, err := e.c.CreateCallOff(ctx, callOffReq("x", "frameworkAgreements/teknik", "svets", need, 1000))
		st := wantCode(t, err, codes.Unavailable)
		if !strings.Contains(st.Message(), "councils service is unavailable; nothing was written") {
			t.Fatalf("message: %s", st.Message())
		}
		if digest(t, e.rdb) != before {
			t.Fatal("the refused call-off wrote")
		}
	})
}
