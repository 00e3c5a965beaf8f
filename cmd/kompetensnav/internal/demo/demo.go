// Package demo loads a small demo dataset through the public gRPC API (so
// it passes the same validation as any client): the five sector councils of
// Göteborgsregionen's competence hub and a few needs in different states;
// companies in the region (fictitious, with synthetic organisation numbers
// in a range Bolagsverket has not reached) with notices and coaching
// conversations dated relative to today, so the demand signal of the last
// 12 months always shows them; training providers and a test centre, an
// ACTIVE framework agreement with two lots, and a call-off awarded for one
// of the approved needs (procurement.go); the demo skills taxonomy with a
// mapping, validations and a certificate (skills.go). Loading twice is
// harmless: ids are fixed and existing ones are kept.
package demo

import (
	"context"
	"fmt"
	"time"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Councils are the demo councils, by id.
var Councils = []struct {
	ID      string
	Name    string
	Sector  commonv1.Sector
	Members []string
}{
	{"fordon", "Kompetensrådet för fordonsindustrin", commonv1.Sector_SECTOR_VEHICLE_INDUSTRY, []string{"IF Metall", "Teknikföretagen", "Unionen"}},
	{"handel", "Kompetensrådet för handeln", commonv1.Sector_SECTOR_RETAIL, []string{"Handels", "Svensk Handel"}},
	{"besoksnaring", "Kompetensrådet för besöksnäringen", commonv1.Sector_SECTOR_HOSPITALITY, []string{"HRF", "Visita"}},
	{"transport", "Kompetensrådet för transport och logistik", commonv1.Sector_SECTOR_TRANSPORT, []string{"Transportarbetareförbundet", "Biltrafikens Arbetsgivareförbund"}},
	{"teknik", "Kompetensrådet för teknik- och industriföretag", commonv1.Sector_SECTOR_TECH_INDUSTRY, []string{"IF Metall", "Teknikföretagen", "Unionen", "Sveriges Ingenjörer"}},
}

type need struct {
	council, id string
	n           *councilsv1.CompetenceNeed
	submit      bool
	approve     bool
}

var needs = []need{
	{"fordon", "elektrifiering-service", &councilsv1.CompetenceNeed{
		Title: "Service av elektrifierade drivlinor", Headcount: 120,
		Skills:         []string{"högvoltssäkerhet", "felsökning elsystem"},
		TargetGroups:   []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_EMPLOYED_AT_RISK, commonv1.TargetGroup_TARGET_GROUP_NOTIFIED},
		Municipalities: []string{"1480", "1440", "1482"}, Priority: councilsv1.Priority_PRIORITY_HIGH,
		NeededBy:  &date.Date{Year: 2027, Month: 9, Day: 1},
		Rationale: "Omvärldsbevakning: omställningen till elfordon ändrar verkstädernas arbete inom tre år.",
	}, true, true},
	{"teknik", "cnc-operatorer", &councilsv1.CompetenceNeed{
		Title: "CNC-operatörer med programmering", Headcount: 60,
		Skills:       []string{"cnc-programmering", "ritningsläsning"},
		TargetGroups: []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_FURLOUGHED, commonv1.TargetGroup_TARGET_GROUP_LAID_OFF},
		Priority:     councilsv1.Priority_PRIORITY_MEDIUM,
		Rationale:    "Korta, riktade utbildningar på 1–10 dagar för permitterade och uppsagda.",
	}, true, true},
	{"handel", "e-handel-logistik", &councilsv1.CompetenceNeed{
		Title: "E-handel och lagerlogistik", Headcount: 45,
		TargetGroups: []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_JOB_SEEKER},
		Priority:     councilsv1.Priority_PRIORITY_LOW,
	}, false, false},
}

// Companies are the demo companies, by id.
var Companies = []struct {
	ID, Name, Number, SNI, Municipality, Council string
	Employees                                    int32
}{
	{"torslanda-drivlina", "Torslanda Drivlina AB", "559990-0015", "29320", "1480", "fordon", 1200},
	{"ale-fordonskomponenter", "Ale Fordonskomponenter AB", "559990-0023", "29320", "1440", "fordon", 340},
	{"molndals-platpress", "Mölndals Plåtpress AB", "559990-0031", "25500", "1481", "teknik", 180},
	{"kungalvs-kablage", "Kungälvs Kablage AB", "559990-0049", "27320", "1482", "fordon", 95},
	{"nordstans-handelshus", "Nordstans Handelshus AB", "559990-0056", "47190", "1480", "handel", 60},
}

// notices are dated this many days before the day the demo is loaded.
var notices = []struct {
	company, id string
	kind        companiesv1.Notice_Kind
	affected    int32
	daysAgo     int
	effectiveIn int // days after the notice date; 0 for none
	occupations []string
}{
	{"torslanda-drivlina", "permittering-1", companiesv1.Notice_KIND_FURLOUGH, 120, 45, 14, []string{"Montörer", "Truckförare"}},
	{"torslanda-drivlina", "varsel-1", companiesv1.Notice_KIND_REDUNDANCY, 80, 20, 120, []string{"8211 Montörer, fordon"}},
	{"ale-fordonskomponenter", "varsel-1", companiesv1.Notice_KIND_REDUNDANCY, 40, 30, 90, nil},
	{"kungalvs-kablage", "permittering-1", companiesv1.Notice_KIND_FURLOUGH, 25, 60, 7, nil},
	{"molndals-platpress", "uppsagning-1", companiesv1.Notice_KIND_LAYOFF, 12, 90, 0, []string{"Maskinoperatörer"}},
}

// sessions are coaching conversations, dated relative to today (negative:
// ahead); held ones are held after they are planned.
var sessions = []struct {
	company, id  string
	conversation int32
	daysAgo      int
	hold         bool
	actions      []string
}{
	{"torslanda-drivlina", "samtal-1", 1, 14, true, []string{"Kartlägga montörernas kompetens inför elektrifieringen"}},
	{"torslanda-drivlina", "samtal-2", 2, 7, true, []string{"Behovet till fordonsrådet: service av elektrifierade drivlinor"}},
	{"torslanda-drivlina", "samtal-3", 3, -7, false, nil},
	{"ale-fordonskomponenter", "samtal-1", 1, -3, false, nil},
}

// Load creates the demo data through conn.
func Load(ctx context.Context, conn grpc.ClientConnInterface) error {
	if err := loadCouncils(ctx, conn); err != nil {
		return err
	}
	if err := loadCompanies(ctx, conn, time.Now()); err != nil {
		return err
	}
	// Skills first: procurement's lots and accreditations name skills.
	if err := loadSkills(ctx, conn); err != nil {
		return err
	}
	return loadProcurement(ctx, conn)
}

func day(t time.Time, daysAgo int) *date.Date {
	y, m, d := t.AddDate(0, 0, -daysAgo).Date()
	return &date.Date{Year: int32(y), Month: int32(m), Day: int32(d)}
}

func loadCompanies(ctx context.Context, conn grpc.ClientConnInterface, now time.Time) error {
	c := companiesv1.NewCompaniesServiceClient(conn)
	// Noon in Sweden, so that "days ago" never lands on tomorrow there.
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		return err
	}
	y, m, d := now.In(loc).Date()
	today := time.Date(y, m, d, 12, 0, 0, 0, time.UTC)
	for _, dc := range Companies {
		_, err := c.CreateCompany(ctx, &companiesv1.CreateCompanyRequest{CompanyId: dc.ID, Company: &companiesv1.Company{
			OrganisationNumber: dc.Number, DisplayName: dc.Name, SniCode: dc.SNI, Municipality: dc.Municipality,
			EmployeeCount: &dc.Employees, Council: "councils/" + dc.Council,
		}})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("company %s: %w", dc.ID, err)
		}
	}
	for _, dn := range notices {
		n := &companiesv1.Notice{Kind: dn.kind, AffectedEmployees: dn.affected, NoticeDate: day(today, dn.daysAgo), Occupations: dn.occupations}
		if dn.effectiveIn > 0 {
			n.EffectiveDate = day(today, dn.daysAgo-dn.effectiveIn)
		}
		_, err := c.CreateNotice(ctx, &companiesv1.CreateNoticeRequest{Parent: "companies/" + dn.company, NoticeId: dn.id, Notice: n})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("notice %s of %s: %w", dn.id, dn.company, err)
		}
	}
	for _, ds := range sessions {
		s, err := c.CreateCoachingSession(ctx, &companiesv1.CreateCoachingSessionRequest{
			Parent: "companies/" + ds.company, CoachingSessionId: ds.id,
			CoachingSession: &companiesv1.CoachingSession{Conversation: ds.conversation, HeldOn: day(today, ds.daysAgo),
				Coach: "Kompetenscoach, Framtidssäkrad industri"}})
		if status.Code(err) == codes.AlreadyExists {
			continue
		}
		if err != nil {
			return fmt.Errorf("coaching session %s of %s: %w", ds.id, ds.company, err)
		}
		if ds.hold {
			if _, err := c.HoldCoachingSession(ctx, &companiesv1.HoldCoachingSessionRequest{Name: s.GetName(),
				Notes: "Samtal enligt Framtidssäkrad industris metod.", AgreedActions: ds.actions}); err != nil {
				return fmt.Errorf("holding %s: %w", s.GetName(), err)
			}
		}
	}
	return nil
}

func loadCouncils(ctx context.Context, conn grpc.ClientConnInterface) error {
	c := councilsv1.NewCouncilsServiceClient(conn)
	for _, dc := range Councils {
		_, err := c.CreateCouncil(ctx, &councilsv1.CreateCouncilRequest{CouncilId: dc.ID, Council: &councilsv1.SectorCouncil{
			DisplayName: dc.Name, Sector: dc.Sector, MemberOrganisations: dc.Members,
		}})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("council %s: %w", dc.ID, err)
		}
	}
	for _, dn := range needs {
		n, err := c.CreateNeed(ctx, &councilsv1.CreateNeedRequest{Parent: "councils/" + dn.council, NeedId: dn.id, Need: dn.n})
		if status.Code(err) == codes.AlreadyExists {
			continue
		}
		if err != nil {
			return fmt.Errorf("need %s: %w", dn.id, err)
		}
		if dn.submit {
			if _, err := c.SubmitNeed(ctx, &councilsv1.SubmitNeedRequest{Name: n.GetName()}); err != nil {
				return err
			}
		}
		if dn.approve {
			if _, err := c.ApproveNeed(ctx, &councilsv1.ApproveNeedRequest{Name: n.GetName(), Reason: "Prioriterat av kompetensnavets styrgrupp"}); err != nil {
				return err
			}
		}
	}
	return nil
}
