package procurement_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func TestProviders(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		// The organisation number is normalised as companies do it.
		req := providerReq("lernia", "5560125790")
		p := mustProvider(t, e, req)
		if p.GetName() != "providers/lernia" || p.GetOrganisationNumber() != "556012-5790" || p.GetEtag() == "" || p.GetCreateTime() == nil {
			t.Fatalf("created %v", p)
		}
		// Unique whatever the spelling (the 12-digit form, too).
		dup := providerReq("lernia2", "165560125790")
		_, err := e.c.CreateProvider(ctx, dup)
		st := wantCode(t, err, codes.AlreadyExists)
		if !strings.Contains(st.Message(), "556012-5790") {
			t.Fatalf("message does not name the number: %s", st.Message())
		}
		// A test centre needs a valid accreditation.
		tc := providerReq("centre", orgNumbers[1], procurementv1.Provider_KIND_TEST_CENTRE)
		tc.Provider.Accreditations[0].ValidUntil = day(2026, 3, 1) // the day before the clock's today
		_, err = e.c.CreateProvider(ctx, tc)
		testkit.WantBadRequest(t, err, "provider.accreditations")
		tc.Provider.Accreditations[0].ValidUntil = day(2026, 3, 2)
		mustProvider(t, e, tc)

		// Lists filter on kind, municipality and accredited skill area.
		other := providerReq("folkuniversitetet", orgNumbers[2])
		other.Provider.Municipalities = []string{"1401"}
		mustProvider(t, e, other)
		for filter, want := range map[string][]string{
			`kinds:"KIND_TEST_CENTRE"`:                                 {"providers/centre"},
			`municipalities:"1401"`:                                    {"providers/folkuniversitetet"},
			`skill_areas:"skills/svetsning"`:                           {"providers/centre"},
			`municipalities:"1480" AND kinds:"KIND_TRAINING_PROVIDER"`: {"providers/lernia"},
			``: {"providers/lernia", "providers/centre", "providers/folkuniversitetet"},
		} {
			list, err := e.c.ListProviders(ctx, &procurementv1.ListProvidersRequest{Filter: filter})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range list.GetProviders() {
				got = append(got, p.GetName())
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("%s: %v, want %v", filter, got, want)
			}
		}

		// Update: the number moves its marker; the old one is free again.
		e.clock.tick()
		p, err = e.c.UpdateProvider(ctx, &procurementv1.UpdateProviderRequest{
			Provider:   &procurementv1.Provider{Name: "providers/lernia", OrganisationNumber: orgNumbers[4], Etag: p.GetEtag()},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"organisation_number"}}})
		if err != nil || p.GetOrganisationNumber() != orgNumbers[4] {
			t.Fatalf("update: %v %v", p, err)
		}
		mustProvider(t, e, providerReq("ny", "556012-5790"))
		_, err = e.c.UpdateProvider(ctx, &procurementv1.UpdateProviderRequest{
			Provider:   &procurementv1.Provider{Name: "providers/ny", OrganisationNumber: orgNumbers[4]},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"organisation_number"}}})
		wantCode(t, err, codes.AlreadyExists)
		// A stale etag is refused; a bad number names the field.
		_, err = e.c.UpdateProvider(ctx, &procurementv1.UpdateProviderRequest{
			Provider: &procurementv1.Provider{Name: "providers/lernia", DisplayName: "Lernia", Etag: "0000000000000000"}})
		wantCode(t, err, codes.Aborted)
		_, err = e.c.UpdateProvider(ctx, &procurementv1.UpdateProviderRequest{
			Provider: &procurementv1.Provider{Name: "providers/lernia", OrganisationNumber: "556012-5791"}})
		testkit.WantBadRequest(t, err, "provider.organisation_number")
		// An update that changes nothing writes nothing.
		before := len(eventTypes(t, e))
		same, err := e.c.UpdateProvider(ctx, &procurementv1.UpdateProviderRequest{
			Provider: &procurementv1.Provider{Name: "providers/lernia", DisplayName: p.GetDisplayName()}})
		if err != nil || same.GetEtag() != p.GetEtag() || len(eventTypes(t, e)) != before {
			t.Fatalf("no-op update wrote: %v %v", same, err)
		}

		// Deleted while not ranked anywhere; its number is free again.
		if _, err := e.c.DeleteProvider(ctx, &procurementv1.DeleteProviderRequest{Name: "providers/folkuniversitetet"}); err != nil {
			t.Fatal(err)
		}
		_, err = e.c.GetProvider(ctx, &procurementv1.GetProviderRequest{Name: "providers/folkuniversitetet"})
		wantCode(t, err, codes.NotFound)
		mustProvider(t, e, providerReq("igen", orgNumbers[2]))
	})
}

// Uniqueness of the organisation number is decided in Redis: of many
// concurrent registrations of one number exactly one succeeds.
func TestOrganisationNumberUniqueUnderConcurrency(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		const n = 30
		var created, taken atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req := providerReq("p"+string(rune('a'+i%26))+string(rune('a'+i/26)), "556012-5790")
				_, err := e.c.CreateProvider(ctx, req)
				switch {
				case err == nil:
					created.Add(1)
				case strings.Contains(err.Error(), "AlreadyExists"):
					taken.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		list, err := e.c.ListProviders(ctx, &procurementv1.ListProvidersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if created.Load() != 1 || taken.Load() != n-1 || len(list.GetProviders()) != 1 {
			t.Fatalf("%d created, %d refused, %d stored", created.Load(), taken.Load(), len(list.GetProviders()))
		}
	})
}

func TestProviderRankedInAnActiveAgreementCannotBeDeleted(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		activeAgreement(t, e, "teknik", procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER, 1_000_000)
		_, err := e.c.DeleteProvider(ctx, &procurementv1.DeleteProviderRequest{Name: "providers/b"})
		st := wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(st.Message(), "frameworkAgreements/teknik") {
			t.Fatalf("message does not name the agreement: %s", st.Message())
		}
		if v := testkit.WantPreconditionFailure(t, err, "providers/b"); v.GetDescription() != st.Message() {
			t.Fatalf("violation %v", v)
		}
		if _, err := e.c.TerminateFrameworkAgreement(ctx, &procurementv1.TerminateFrameworkAgreementRequest{
			Name: "frameworkAgreements/teknik", Reason: "Ersatt av ett nytt ramavtal"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.DeleteProvider(ctx, &procurementv1.DeleteProviderRequest{Name: "providers/b"}); err != nil {
			t.Fatalf("delete after termination: %v", err)
		}
	})
}
