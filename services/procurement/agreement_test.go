package procurement_test

import (
	"strings"
	"testing"
	"time"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

const rank = procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER
const mini = procurementv1.AwardMethod_AWARD_METHOD_MINI_COMPETITION
const either = procurementv1.AwardMethod_AWARD_METHOD_EITHER

func TestAgreementLifecycle(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		threeProviders(t, e)
		a, err := e.c.CreateFrameworkAgreement(ctx, agreementReq("teknik", either, 2_500_000))
		if err != nil {
			t.Fatal(err)
		}
		if a.GetState() != procurementv1.FrameworkAgreement_STATE_DRAFT || a.GetAwardedValue().GetUnits() != 0 ||
			a.GetAwardedValue().GetCurrencyCode() != "SEK" || a.GetLots()[0].GetKind() != procurementv1.Lot_KIND_TRAINING {
			t.Fatalf("created %v", a)
		}
		// The reference number is unique, case-insensitively.
		dup := agreementReq("annat", rank, 1)
		dup.FrameworkAgreement.ReferenceNumber = "gr-2026-teknik"
		_, err = e.c.CreateFrameworkAgreement(ctx, dup)
		wantCode(t, err, codes.AlreadyExists)

		// A draft is editable; the rules of create apply to the result.
		a, err = e.c.UpdateFrameworkAgreement(ctx, &procurementv1.UpdateFrameworkAgreementRequest{
			FrameworkAgreement: &procurementv1.FrameworkAgreement{Name: a.GetName(), Title: "Teknik- och industriutbildning 2026", Etag: a.GetEtag()},
			UpdateMask:         &fieldmaskpb.FieldMask{Paths: []string{"title"}}})
		if err != nil || a.GetTitle() != "Teknik- och industriutbildning 2026" {
			t.Fatalf("update: %v %v", a, err)
		}
		_, err = e.c.UpdateFrameworkAgreement(ctx, &procurementv1.UpdateFrameworkAgreementRequest{
			FrameworkAgreement: &procurementv1.FrameworkAgreement{Name: a.GetName(), PriceWeight: 70},
			UpdateMask:         &fieldmaskpb.FieldMask{Paths: []string{"price_weight"}}})
		testkit.WantBadRequest(t, err, "framework_agreement.price_weight")

		a, err = e.c.ActivateFrameworkAgreement(ctx, &procurementv1.ActivateFrameworkAgreementRequest{Name: a.GetName(), Etag: a.GetEtag()})
		if err != nil || a.GetState() != procurementv1.FrameworkAgreement_STATE_ACTIVE || a.GetActivateTime() == nil {
			t.Fatalf("activate: %v %v", a, err)
		}
		// Only drafts are editable, and activation happens once.
		_, err = e.c.UpdateFrameworkAgreement(ctx, &procurementv1.UpdateFrameworkAgreementRequest{
			FrameworkAgreement: &procurementv1.FrameworkAgreement{Name: a.GetName(), Title: "Nytt"},
			UpdateMask:         &fieldmaskpb.FieldMask{Paths: []string{"title"}}})
		st := wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "STATE_ACTIVE") {
			t.Fatalf("message does not name the state: %s", st.Message())
		}
		_, err = e.c.ActivateFrameworkAgreement(ctx, &procurementv1.ActivateFrameworkAgreementRequest{Name: a.GetName()})
		wantCode(t, err, codes.FailedPrecondition)

		// Lists by state and skill area, and the provider it ranks.
		for filter, n := range map[string]int{`state = STATE_ACTIVE`: 1, `state = STATE_DRAFT`: 0,
			`skill_areas:"skills/svetsning"`: 1, `providers:"providers/centre"`: 1, `providers:"providers/x"`: 0} {
			list, err := e.c.ListFrameworkAgreements(ctx, &procurementv1.ListFrameworkAgreementsRequest{Filter: filter})
			if err != nil || len(list.GetFrameworkAgreements()) != n {
				t.Fatalf("%s: %v %v", filter, list, err)
			}
		}

		// Past its last day it reads EXPIRED at once; the sweep records it,
		// which frees its providers.
		e.clock.set(time.Date(2029, 12, 31, 22, 59, 0, 0, time.UTC)) // 23:59 in Sweden, still the last day
		if got, _ := e.c.GetFrameworkAgreement(ctx, &procurementv1.GetFrameworkAgreementRequest{Name: a.GetName()}); got.GetState() != procurementv1.FrameworkAgreement_STATE_ACTIVE {
			t.Fatalf("on its last day: %v", got.GetState())
		}
		e.clock.set(time.Date(2029, 12, 31, 23, 1, 0, 0, time.UTC)) // 00:01 on 1 January in Sweden
		got, err := e.c.GetFrameworkAgreement(ctx, &procurementv1.GetFrameworkAgreementRequest{Name: a.GetName()})
		if err != nil || got.GetState() != procurementv1.FrameworkAgreement_STATE_EXPIRED {
			t.Fatalf("after its last day: %v %v", got, err)
		}
		_, err = e.c.TerminateFrameworkAgreement(ctx, &procurementv1.TerminateFrameworkAgreementRequest{Name: a.GetName(), Reason: "x"})
		wantCode(t, err, codes.FailedPrecondition)
		_, err = e.c.DeleteProvider(ctx, &procurementv1.DeleteProviderRequest{Name: "providers/a"})
		wantCode(t, err, codes.FailedPrecondition) // ranked until the sweep records the expiry
		e.background(t)
		eventually(t, "the sweep records the expiry", func() bool {
			types := eventTypes(t, e)
			return types[len(types)-1] == "framework_agreement.expired"
		})
		list, err := e.c.ListFrameworkAgreements(ctx, &procurementv1.ListFrameworkAgreementsRequest{Filter: `state = STATE_EXPIRED`})
		if err != nil || len(list.GetFrameworkAgreements()) != 1 {
			t.Fatalf("expired list: %v %v", list, err)
		}
		if _, err := e.c.DeleteProvider(ctx, &procurementv1.DeleteProviderRequest{Name: "providers/a"}); err != nil {
			t.Fatalf("delete after expiry: %v", err)
		}

		// An agreement that already ended cannot be activated; a draft can
		// be terminated.
		old := agreementReq("gammalt", rank, 1000)
		old.FrameworkAgreement.Lots = old.FrameworkAgreement.Lots[:1]
		old.FrameworkAgreement.Lots[0].Providers = []string{"providers/b"}
		if _, err := e.c.CreateFrameworkAgreement(ctx, old); err != nil {
			t.Fatal(err)
		}
		_, err = e.c.ActivateFrameworkAgreement(ctx, &procurementv1.ActivateFrameworkAgreementRequest{Name: "frameworkAgreements/gammalt"})
		wantCode(t, err, codes.FailedPrecondition)
		term, err := e.c.TerminateFrameworkAgreement(ctx, &procurementv1.TerminateFrameworkAgreementRequest{Name: "frameworkAgreements/gammalt", Reason: "Upphandlingen avbröts"})
		if err != nil || term.GetState() != procurementv1.FrameworkAgreement_STATE_TERMINATED || term.GetStateReason() != "Upphandlingen avbröts" {
			t.Fatalf("terminate: %v %v", term, err)
		}
	})
}

// Activation checks the ranked providers again, against what they are when
// it lands: a provider deleted since the draft was written stops it.
func TestActivationChecksTheProvidersAgain(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		threeProviders(t, e)
		if _, err := e.c.CreateFrameworkAgreement(ctx, agreementReq("teknik", rank, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.DeleteProvider(ctx, &procurementv1.DeleteProviderRequest{Name: "providers/b"}); err != nil {
			t.Fatal(err)
		}
		_, err := e.c.ActivateFrameworkAgreement(ctx, &procurementv1.ActivateFrameworkAgreementRequest{Name: "frameworkAgreements/teknik"})
		st := wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "providers/b does not exist") {
			t.Fatalf("message: %s", st.Message())
		}
	})
}

// Every rule refuses with INVALID_ARGUMENT naming the field (or
// FAILED_PRECONDITION for a need that is not approved), and writes nothing.
func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		activeAgreement(t, e, "teknik", either, 1_000_000)
		need := approvedNeed(e)
		submitted := "councils/teknik/needs/inskickad"
		e.councils.put(submitted, councilsv1.CompetenceNeed_STATE_SUBMITTED)

		agreement := func(edit func(a *procurementv1.FrameworkAgreement)) func() error {
			return func() error {
				req := agreementReq("ny", either, 1000)
				req.FrameworkAgreement.ReferenceNumber = "GR-2026-NY"
				edit(req.FrameworkAgreement)
				_, err := e.c.CreateFrameworkAgreement(ctx, req)
				return err
			}
		}
		callOff := func(edit func(c *procurementv1.CallOff)) func() error {
			return func() error {
				req := callOffReq("ny", "frameworkAgreements/teknik", "svets", need, 10_000)
				req.CallOff.AwardMethod = rank
				edit(req.CallOff)
				_, err := e.c.CreateCallOff(ctx, req)
				return err
			}
		}
		cases := []struct {
			name  string
			call  func() error
			field string     // for INVALID_ARGUMENT
			code  codes.Code // otherwise
		}{
			{"validity over four years", agreement(func(a *procurementv1.FrameworkAgreement) { a.ValidUntil = day(2030, 1, 1) }), "framework_agreement.valid_until", 0},
			{"ends before it starts", agreement(func(a *procurementv1.FrameworkAgreement) { a.ValidUntil = day(2025, 12, 31) }), "framework_agreement.valid_until", 0},
			{"not a date", agreement(func(a *procurementv1.FrameworkAgreement) { a.ValidFrom = day(2026, 2, 30) }), "framework_agreement.valid_from", 0},
			{"weights not summing to 100", agreement(func(a *procurementv1.FrameworkAgreement) { a.PriceWeight = 50 }), "framework_agreement.price_weight", 0},
			{"weights missing for mini-competition", agreement(func(a *procurementv1.FrameworkAgreement) { a.PriceWeight, a.QualityWeight = 0, 0 }), "framework_agreement.price_weight", 0},
			{"ceiling in euro", agreement(func(a *procurementv1.FrameworkAgreement) { a.CeilingValue.CurrencyCode = "EUR" }), "framework_agreement.ceiling_value.currency_code", 0},
			{"ceiling zero", agreement(func(a *procurementv1.FrameworkAgreement) { a.CeilingValue = &money.Money{CurrencyCode: "SEK"} }), "framework_agreement.ceiling_value", 0},
			{"ceiling in part-öre", agreement(func(a *procurementv1.FrameworkAgreement) { a.CeilingValue.Nanos = 5 }), "framework_agreement.ceiling_value.nanos", 0},
			{"unknown provider in a lot", agreement(func(a *procurementv1.FrameworkAgreement) {
				a.Lots[0].Providers = append(a.Lots[0].Providers, "providers/okand")
			}), "framework_agreement.lots[0].providers[3]", 0},
			{"training provider in an assessment lot", agreement(func(a *procurementv1.FrameworkAgreement) {
				a.Lots[1].Providers = []string{"providers/centre", "providers/a"}
			}), "framework_agreement.lots[1].providers[1]", 0},
			{"test centre not accredited for the lot", agreement(func(a *procurementv1.FrameworkAgreement) {
				a.Lots[1].SkillAreas = []string{"skills/svetsning", "skills/truck"}
			}), "framework_agreement.lots[1].providers[0]", 0},
			{"duplicate lot ids", agreement(func(a *procurementv1.FrameworkAgreement) { a.Lots[1].Id = "svets" }), "framework_agreement.lots[1].id", 0},
			{"no lots", agreement(func(a *procurementv1.FrameworkAgreement) { a.Lots = nil }), "framework_agreement.lots", 0},
			{"bad organisation number", func() error {
				_, err := e.c.CreateProvider(ctx, providerReq("x", "556012-5791"))
				return err
			}, "provider.organisation_number", 0},
			{"no kind", func() error {
				req := providerReq("x", orgNumbers[5])
				req.Provider.Kinds = nil
				_, err := e.c.CreateProvider(ctx, req)
				return err
			}, "provider.kinds", 0},
			{"days 11", callOff(func(c *procurementv1.CallOff) { c.Specification.Days = 11 }), "call_off.specification.days", 0},
			{"no participants", callOff(func(c *procurementv1.CallOff) { c.Specification.Participants = 0 }), "call_off.specification.participants", 0},
			{"value in euro", callOff(func(c *procurementv1.CallOff) { c.Value.CurrencyCode = "EUR" }), "call_off.value.currency_code", 0},
			{"not a municipality", callOff(func(c *procurementv1.CallOff) { c.Specification.Municipality = "9999" }), "call_off.specification.municipality", 0},
			{"outside the need's municipalities", callOff(func(c *procurementv1.CallOff) { c.Specification.Municipality = "1401" }), "call_off.specification.municipality", 0},
			{"latest start in the past", callOff(func(c *procurementv1.CallOff) { c.Specification.LatestStart = day(2026, 3, 1) }), "call_off.specification.latest_start", 0},
			{"unknown lot", callOff(func(c *procurementv1.CallOff) { c.Lot = "truck" }), "call_off.lot", 0},
			{"unknown agreement", callOff(func(c *procurementv1.CallOff) { c.FrameworkAgreement = "frameworkAgreements/okant" }), "call_off.framework_agreement", 0},
			{"unknown need", callOff(func(c *procurementv1.CallOff) { c.Need = "councils/teknik/needs/okand" }), "call_off.need", 0},
			{"method missing where either is allowed", callOff(func(c *procurementv1.CallOff) { c.AwardMethod = 0 }), "call_off.award_method", 0},
			{"mini-competition without deadline", callOff(func(c *procurementv1.CallOff) { c.AwardMethod = mini }), "call_off.bid_deadline", 0},
			{"deadline in the past", callOff(func(c *procurementv1.CallOff) {
				c.AwardMethod, c.BidDeadline = mini, ts(start.Add(-time.Hour))
			}), "call_off.bid_deadline", 0},
			{"more than the ceiling", callOff(func(c *procurementv1.CallOff) { c.Value = sekOf(1_000_001) }), "", codes.FailedPrecondition},
			{"need not approved", callOff(func(c *procurementv1.CallOff) { c.Need = submitted }), "", codes.FailedPrecondition},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := digest(t, e.rdb)
				err := tc.call()
				if tc.field != "" {
					testkit.WantBadRequest(t, err, tc.field)
				} else {
					wantCode(t, err, tc.code)
				}
				if digest(t, e.rdb) != before {
					t.Fatal("the refused request changed the store")
				}
			})
		}
		// The need's state is named in the refusal.
		err := callOff(func(c *procurementv1.CallOff) { c.Need = submitted })()
		if !strings.Contains(err.Error(), "STATE_SUBMITTED") {
			t.Fatalf("message does not name the need's state: %v", err)
		}
	})
}
