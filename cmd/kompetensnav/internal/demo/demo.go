// Package demo loads a small demo dataset through the public gRPC API (so
// it passes the same validation as any client): the five sector councils of
// Göteborgsregionen's competence hub and a few needs in different states,
// the demo skills taxonomy with a mapping, validations and a certificate.
// Loading twice is harmless: ids are fixed and existing ones are kept.
package demo

import (
	"context"
	"fmt"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
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
	}, true, false},
	{"handel", "e-handel-logistik", &councilsv1.CompetenceNeed{
		Title: "E-handel och lagerlogistik", Headcount: 45,
		TargetGroups: []commonv1.TargetGroup{commonv1.TargetGroup_TARGET_GROUP_JOB_SEEKER},
		Priority:     councilsv1.Priority_PRIORITY_LOW,
	}, false, false},
}

// Load creates the demo data through conn.
func Load(ctx context.Context, conn grpc.ClientConnInterface) error {
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
	return loadSkills(ctx, conn)
}
