package demo

import (
	"context"
	"fmt"
	"time"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/genproto/googleapis/type/money"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The demo's procurement: three training providers and a test centre in
// the region (fictitious, with valid organisation numbers in the unassigned
// 5599… range, as the companies demo), the framework agreement "Teknik- och
// industriutbildning" with a training lot and an assessment lot, ACTIVE
// from 1 January this year for four years, and one call-off by rank,
// awarded, for the technology council's CNC need.
var providers = []struct {
	id string
	p  *procurementv1.Provider
}{
	{"vastkust-teknik", &procurementv1.Provider{OrganisationNumber: "559950-0104", DisplayName: "Västkustens Tekniska Utbildning AB",
		Kinds: []procurementv1.Provider_Kind{procurementv1.Provider_KIND_TRAINING_PROVIDER}, ContactEmail: "avrop@vastkust-teknik.example",
		Municipalities: []string{"1480", "1481", "1482", "1440"}}},
	{"yrkesakademin", &procurementv1.Provider{OrganisationNumber: "559950-0203", DisplayName: "Göteborgs Yrkesakademi AB",
		Kinds: []procurementv1.Provider_Kind{procurementv1.Provider_KIND_TRAINING_PROVIDER}, ContactEmail: "ramavtal@yrkesakademin.example",
		Municipalities: []string{"1480", "1402", "1441", "1489"}}},
	{"industriskolan", &procurementv1.Provider{OrganisationNumber: "559950-0302", DisplayName: "Industriskolan i Mölndal AB",
		Kinds: []procurementv1.Provider_Kind{procurementv1.Provider_KIND_TRAINING_PROVIDER}, ContactEmail: "kurser@industriskolan.example",
		Municipalities: []string{"1481", "1401", "1384"}}},
	{"validering-vast", &procurementv1.Provider{OrganisationNumber: "559950-0401", DisplayName: "Industrivalidering Väst AB",
		Kinds: []procurementv1.Provider_Kind{procurementv1.Provider_KIND_TEST_CENTRE}, ContactEmail: "validering@validering-vast.example",
		Municipalities: []string{"1480", "1482", "1415"}}},
}

const demoAgreement = "teknik-industri"

func loadProcurement(ctx context.Context, conn grpc.ClientConnInterface) error {
	p := procurementv1.NewProcurementServiceClient(conn)
	year := int32(time.Now().Year())
	for _, dp := range providers {
		pr := dp.p
		if pr.Kinds[0] == procurementv1.Provider_KIND_TEST_CENTRE {
			pr.Accreditations = []*procurementv1.Accreditation{
				{SkillArea: "skills/svetsning", Body: "Svetskommissionen", ValidUntil: &date.Date{Year: year + 3, Month: 12, Day: 31}},
				{SkillArea: "skills/cnc-programmering", Body: "Teknikföretagens branschvalidering", ValidUntil: &date.Date{Year: year + 3, Month: 12, Day: 31}},
			}
		}
		if _, err := p.CreateProvider(ctx, &procurementv1.CreateProviderRequest{ProviderId: dp.id, Provider: pr}); err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("provider %s: %w", dp.id, err)
		}
	}
	_, err := p.CreateFrameworkAgreement(ctx, &procurementv1.CreateFrameworkAgreementRequest{FrameworkAgreementId: demoAgreement,
		FrameworkAgreement: &procurementv1.FrameworkAgreement{
			ReferenceNumber: fmt.Sprintf("GR-%d-017", year), Title: "Teknik- och industriutbildning",
			Description: "Korta, behovsanpassade utbildningar (1–10 dagar) och branschvalidering för teknik- och industriföretagen i Göteborgsregionen.",
			ValidFrom:   &date.Date{Year: year, Month: 1, Day: 1}, ValidUntil: &date.Date{Year: year + 3, Month: 12, Day: 31},
			CeilingValue: &money.Money{CurrencyCode: "SEK", Units: 5_000_000}, AwardMethod: procurementv1.AwardMethod_AWARD_METHOD_EITHER,
			PriceWeight: 60, QualityWeight: 40,
			Lots: []*procurementv1.Lot{
				{Id: "teknik", Title: "Teknik och industri", Kind: procurementv1.Lot_KIND_TRAINING,
					SkillAreas: []string{"skills/hogvoltssakerhet", "skills/cnc-programmering", "skills/svetsning"},
					Providers:  []string{"providers/vastkust-teknik", "providers/yrkesakademin", "providers/industriskolan"}},
				{Id: "validering", Title: "Branschvalidering", Kind: procurementv1.Lot_KIND_ASSESSMENT,
					SkillAreas: []string{"skills/svetsning", "skills/cnc-programmering"},
					Providers:  []string{"providers/validering-vast"}},
			},
		}})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("framework agreement: %w", err)
	}
	a, err := p.GetFrameworkAgreement(ctx, &procurementv1.GetFrameworkAgreementRequest{Name: "frameworkAgreements/" + demoAgreement})
	if err != nil {
		return err
	}
	if a.GetState() == procurementv1.FrameworkAgreement_STATE_DRAFT {
		if _, err := p.ActivateFrameworkAgreement(ctx, &procurementv1.ActivateFrameworkAgreementRequest{Name: a.GetName()}); err != nil {
			return fmt.Errorf("activating the framework agreement: %w", err)
		}
	}

	const need = "councils/teknik/needs/cnc-operatorer"
	if _, err := p.GetCallOff(ctx, &procurementv1.GetCallOffRequest{Name: "callOffs/cnc-operatorer-1"}); err == nil {
		return nil // loaded before
	}
	start := time.Now().AddDate(0, 2, 0)
	c, err := p.CreateCallOff(ctx, &procurementv1.CreateCallOffRequest{CallOffId: "cnc-operatorer-1", CallOff: &procurementv1.CallOff{
		FrameworkAgreement: a.GetName(), Lot: "teknik", Need: need, Project: "projects/esf-2020-00312",
		Value: &money.Money{CurrencyCode: "SEK", Units: 240_000}, AwardMethod: procurementv1.AwardMethod_AWARD_METHOD_RANK_ORDER,
		Specification: &procurementv1.Specification{Skills: []string{"skills/cnc-programmering"}, Days: 5, Participants: 16,
			Municipality: "1481", LatestStart: &date.Date{Year: int32(start.Year()), Month: int32(start.Month()), Day: int32(start.Day())}},
	}})
	if err != nil {
		return fmt.Errorf("call-off: %w", err)
	}
	if _, err := p.AcceptCallOff(ctx, &procurementv1.AcceptCallOffRequest{Name: c.GetName(), Provider: c.GetProvider()}); err != nil {
		return fmt.Errorf("accepting the call-off: %w", err)
	}
	// The councils service moves the need into procurement when it sees
	// the award (its consumer of procurement's events); the demo starts
	// once it has.
	councils := councilsv1.NewCouncilsServiceClient(conn)
	for deadline := time.Now().Add(20 * time.Second); ; {
		n, err := councils.GetNeed(ctx, &councilsv1.GetNeedRequest{Name: need})
		if err != nil {
			return err
		}
		if n.GetState() == councilsv1.CompetenceNeed_STATE_IN_PROCUREMENT {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still %s 20 s after its call-off was awarded: is the councils service consuming procurement's events?", need, n.GetState())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
