package procurement_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// The skills that accreditations, lots and call-offs name are checked with
// the skills service: an unknown one, or a deprecated one (naming its
// successor), is a 400 naming the field, and nothing is written.
func TestUnknownAndDeprecatedSkillsAreRefusedAndWriteNothing(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		a := activeAgreement(t, e, "teknik", procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER, 1_000_000)
		need := approvedNeed(e)

		centre := func(areas ...string) *procurementv1.CreateProviderRequest {
			r := providerReq("ny", orgNumbers[4], procurementv1.Provider_KIND_TEST_CENTRE)
			r.Provider.Accreditations = nil
			for _, area := range areas {
				r.Provider.Accreditations = append(r.Provider.Accreditations,
					&procurementv1.Accreditation{SkillArea: area, Body: "Svetskommissionen", ValidUntil: day(2027, 12, 31)})
			}
			return r
		}
		agreementWith := func(edit func(lots []*procurementv1.Lot)) *procurementv1.CreateFrameworkAgreementRequest {
			r := agreementReq("ny", procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER, 1_000)
			edit(r.FrameworkAgreement.Lots)
			return r
		}
		callOffWith := func(skills ...string) *procurementv1.CreateCallOffRequest {
			r := callOffReq("ny", a.GetName(), "svets", need, 10_000)
			r.CallOff.Specification.Skills = skills
			return r
		}
		draft, err := e.c.CreateFrameworkAgreement(ctx, agreementReq("utkast", procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER, 1_000))
		if err != nil {
			t.Fatal(err)
		}
		councilCalls := e.councils.calls.Load()

		for _, c := range []struct {
			name   string
			call   func() error
			fields []string
			says   []string
		}{
			{"an accreditation for an unknown skill", func() error {
				return err1(e.c.CreateProvider(ctx, centre("skills/svetsning", "skills/okand")))
			}, []string{"provider.accreditations[1].skill_area"}, []string{"skills/okand is not a skill"}},
			{"an accreditation for a deprecated skill", func() error {
				return err1(e.c.CreateProvider(ctx, centre("skills/elsakerhet-fordon")))
			}, []string{"provider.accreditations[0].skill_area"},
				[]string{"skills/elsakerhet-fordon is deprecated; use its successor skills/hogvoltssakerhet"}},
			{"a lot's unknown skill area", func() error {
				return err1(e.c.CreateFrameworkAgreement(ctx, agreementWith(func(lots []*procurementv1.Lot) {
					lots[0].SkillAreas = []string{"skills/svetsning", "skills/okand"}
				})))
			}, []string{"framework_agreement.lots[0].skill_areas[1]"}, []string{"skills/okand is not a skill"}},
			{"unknown and deprecated skill areas of two lots", func() error {
				return err1(e.c.CreateFrameworkAgreement(ctx, agreementWith(func(lots []*procurementv1.Lot) {
					lots[0].SkillAreas = []string{"skills/saknas", "skills/svetsning"}
					lots[1].Kind, lots[1].Providers = procurementv1.Lot_KIND_TRAINING, []string{"providers/b"}
					lots[1].SkillAreas = []string{"skills/svetsning", "skills/okand"}
				})))
			}, []string{"framework_agreement.lots[0].skill_areas[0]", "framework_agreement.lots[1].skill_areas[1]"},
				[]string{"skills/saknas is not a skill", "skills/okand is not a skill"}},
			{"a lot's deprecated skill area", func() error {
				return err1(e.c.CreateFrameworkAgreement(ctx, agreementWith(func(lots []*procurementv1.Lot) {
					lots[0].SkillAreas = []string{"skills/svetsning", "skills/elsakerhet-fordon"}
				})))
			}, []string{"framework_agreement.lots[0].skill_areas[1]"}, []string{"deprecated; use its successor skills/hogvoltssakerhet"}},
			{"an update bringing in an unknown skill area", func() error {
				lots := proto.CloneOf(draft).GetLots()
				lots[0].SkillAreas = append(lots[0].SkillAreas, "skills/okand")
				return err1(e.c.UpdateFrameworkAgreement(ctx, &procurementv1.UpdateFrameworkAgreementRequest{
					FrameworkAgreement: &procurementv1.FrameworkAgreement{Name: draft.GetName(), Lots: lots},
					UpdateMask:         &fieldmaskpb.FieldMask{Paths: []string{"lots"}}}))
			}, []string{"framework_agreement.lots[0].skill_areas[1]"}, []string{"skills/okand is not a skill"}},
			{"an update bringing in a deprecated accreditation", func() error {
				return err1(e.c.UpdateProvider(ctx, &procurementv1.UpdateProviderRequest{
					Provider: &procurementv1.Provider{Name: "providers/centre", Accreditations: []*procurementv1.Accreditation{
						{SkillArea: "skills/svetsning", Body: "Svetskommissionen", ValidUntil: day(2027, 12, 31)},
						{SkillArea: "skills/elsakerhet-fordon", Body: "Elsäkerhetsverket", ValidUntil: day(2027, 12, 31)}}},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"accreditations"}}}))
			}, []string{"provider.accreditations[1].skill_area"}, []string{"use its successor skills/hogvoltssakerhet"}},
			{"a call-off training an unknown skill", func() error {
				return err1(e.c.CreateCallOff(ctx, callOffWith("skills/svetsning", "skills/okand")))
			}, []string{"call_off.specification.skills[1]"}, []string{"skills/okand is not a skill"}},
			{"a call-off training a deprecated skill", func() error {
				return err1(e.c.CreateCallOff(ctx, callOffWith("skills/elsakerhet-fordon")))
			}, []string{"call_off.specification.skills[0]"}, []string{"use its successor skills/hogvoltssakerhet"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := digest(t, e.rdb)
				msg := testkit.WantBadRequest(t, c.call(), c.fields...)
				if got := testkit.BadRequestFields(c.call()); len(got) != len(c.fields) {
					t.Errorf("fields %v, want only %v", got, c.fields)
				}
				for _, says := range c.says {
					if !strings.Contains(msg, says) {
						t.Errorf("message %q lacks %q", msg, says)
					}
				}
				if digest(t, e.rdb) != before {
					t.Fatal("a refused request wrote something")
				}
			})
		}
		// A call-off's skills are checked before its need is asked about.
		if e.councils.calls.Load() != councilCalls {
			t.Errorf("the councils service was asked %d times about refused call-offs", e.councils.calls.Load()-councilCalls)
		}
	})
}

// All the skills of a request are asked about in one call, each once; an
// update asks only about the skills it brings in.
func TestSkillsAreAskedAboutOncePerRequest(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		threeProviders(t, e)
		mark := len(e.skills.calls())
		asked := func(what string, want ...[]string) {
			t.Helper()
			got := e.skills.calls()[mark:]
			mark += len(got)
			if len(got) != len(want) {
				t.Fatalf("%s: %d calls %v, want %v", what, len(got), got, want)
			}
			for i := range got {
				if !slices.Equal(got[i], want[i]) {
					t.Fatalf("%s: call %d asked %v, want %v", what, i, got[i], want[i])
				}
			}
		}

		r := agreementReq("teknik", procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER, 1_000_000)
		r.FrameworkAgreement.Lots[0].SkillAreas = []string{"skills/svetsning", "skills/robotsvetsning", "skills/cnc-programmering"}
		r.FrameworkAgreement.Lots = append(r.FrameworkAgreement.Lots, &procurementv1.Lot{Id: "robot", Title: "Robotsvetsning",
			SkillAreas: []string{"skills/robotsvetsning", "skills/svetsning"}, Providers: []string{"providers/b"}})
		e.clock.tick()
		a, err := e.c.CreateFrameworkAgreement(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		asked("create agreement", []string{"skills/svetsning", "skills/robotsvetsning", "skills/cnc-programmering"})

		// An edit that brings in no skill asks nothing; one that does asks
		// about that one only.
		a, err = e.c.UpdateFrameworkAgreement(ctx, &procurementv1.UpdateFrameworkAgreementRequest{
			FrameworkAgreement: &procurementv1.FrameworkAgreement{Name: a.GetName(), Title: "Teknik, svets och CNC"},
			UpdateMask:         &fieldmaskpb.FieldMask{Paths: []string{"title"}}})
		if err != nil {
			t.Fatal(err)
		}
		asked("update the title")
		lots := a.GetLots()
		lots[2].SkillAreas = append(lots[2].SkillAreas, "skills/hogvoltssakerhet")
		if _, err := e.c.UpdateFrameworkAgreement(ctx, &procurementv1.UpdateFrameworkAgreementRequest{
			FrameworkAgreement: &procurementv1.FrameworkAgreement{Name: a.GetName(), Lots: lots},
			UpdateMask:         &fieldmaskpb.FieldMask{Paths: []string{"lots"}}}); err != nil {
			t.Fatal(err)
		}
		asked("update the lots", []string{"skills/hogvoltssakerhet"})

		// A skill deprecated after it came in does not block an edit that
		// leaves it be.
		e.skills.put("skills/svetsning", "skills/robotsvetsning")
		if _, err := e.c.UpdateProvider(ctx, &procurementv1.UpdateProviderRequest{
			Provider:   &procurementv1.Provider{Name: "providers/centre", ContactEmail: "prov@example.org"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"contact_email"}}}); err != nil {
			t.Fatalf("an edit of a provider accredited for a since deprecated skill: %v", err)
		}
		asked("update the contact")
		e.skills.put("skills/svetsning", "")

		if _, err := e.c.ActivateFrameworkAgreement(ctx, &procurementv1.ActivateFrameworkAgreementRequest{Name: a.GetName()}); err != nil {
			t.Fatal(err)
		}
		c := callOffReq("c1", a.GetName(), "svets", approvedNeed(e), 10_000)
		c.CallOff.Specification.Skills = []string{"skills/cnc-programmering", "skills/svetsning"}
		mustCallOff(t, e, c)
		asked("create call-off", []string{"skills/cnc-programmering", "skills/svetsning"})
	})
}

// A request naming more skills than one call takes asks in as few calls as
// it can.
func TestManySkillsAreAskedAboutInBatches(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		threeProviders(t, e)
		r := agreementReq("bred", procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER, 1_000_000)
		r.FrameworkAgreement.Lots = nil
		for i := range 21 {
			l := &procurementv1.Lot{Id: fmt.Sprintf("lot-%d", i), Title: "Lot", Providers: []string{"providers/a"}}
			for j := range 50 {
				name := fmt.Sprintf("skills/s-%d-%d", i, j)
				e.skills.put(name, "")
				l.SkillAreas = append(l.SkillAreas, name)
			}
			r.FrameworkAgreement.Lots = append(r.FrameworkAgreement.Lots, l)
		}
		r.FrameworkAgreement.Lots[20].SkillAreas[49] = "skills/okand"
		mark := len(e.skills.calls())
		_, err := e.c.CreateFrameworkAgreement(ctx, r)
		testkit.WantBadRequest(t, err, "framework_agreement.lots[20].skill_areas[49]")
		calls := e.skills.calls()[mark:]
		if len(calls) != 2 || len(calls[0]) != 1000 || len(calls[1]) != 50 {
			t.Fatalf("1 050 skills asked about in %d calls", len(calls))
		}
	})
}

// The skills service down: UNAVAILABLE, nothing written; what names no
// skill does not need it.
func TestSkillsUnavailableWritesNothing(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		a := activeAgreement(t, e, "teknik", procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER, 1_000_000)
		need := approvedNeed(e)
		e.skills.stop()
		before := digest(t, e.rdb)
		for name, call := range map[string]func() error{
			"provider": func() error {
				return err1(e.c.CreateProvider(ctx, providerReq("ny", orgNumbers[4], procurementv1.Provider_KIND_TEST_CENTRE)))
			},
			"agreement": func() error {
				return err1(e.c.CreateFrameworkAgreement(ctx, agreementReq("ny", procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER, 1_000)))
			},
			"call-off": func() error {
				return err1(e.c.CreateCallOff(ctx, callOffReq("ny", a.GetName(), "svets", need, 10_000)))
			},
		} {
			st := wantCode(t, call(), codes.Unavailable)
			if !strings.Contains(st.Message(), "skills service is unavailable; nothing was written") {
				t.Errorf("%s: %s", name, st.Message())
			}
		}
		if digest(t, e.rdb) != before {
			t.Fatal("a request refused for want of the skills service wrote something")
		}
		// A training provider with no accreditations names no skill.
		mustProvider(t, e, providerReq("utan", orgNumbers[5]))
	})
}
