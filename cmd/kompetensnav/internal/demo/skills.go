package demo

import (
	"context"
	"fmt"

	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/skills/demotaxonomy"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// The skills demo: the demo taxonomy (services/skills/demotaxonomy), the
// vehicle council's mapping of what servicing electrified vehicles takes,
// three people validated against it, and a certificate for one of them.
// People are participant references of the demo only, never real persons.

// DemoMapping is the demo's competence mapping.
const DemoMapping = "mappings/fordon-elektrifiering"

var demoValidations = []struct {
	id, person string
	results    map[string]int32
}{
	{"fordon-p1001", "participants/demo-1001", map[string]int32{"hogvoltssakerhet": 3, "service-elektrifierade-drivlinor": 2, "felsokning-elsystem": 3}},
	{"fordon-p1002", "participants/demo-1002", map[string]int32{"hogvoltssakerhet": 1, "service-elektrifierade-drivlinor": 1, "felsokning-elsystem": 2}},
	{"fordon-p1003", "participants/demo-1003", map[string]int32{"hogvoltssakerhet": 2, "felsokning-elsystem": 1}},
}

func loadSkills(ctx context.Context, conn grpc.ClientConnInterface) error {
	c := skillsv1.NewSkillsServiceClient(conn)
	taxonomy := &skillsv1.ImportSkillsRequest{}
	if err := protojson.Unmarshal(demotaxonomy.JSON, taxonomy); err != nil {
		return fmt.Errorf("demo taxonomy: %w", err)
	}
	if _, err := c.ImportSkills(ctx, taxonomy); err != nil {
		return fmt.Errorf("demo taxonomy: %w", err)
	}
	_, err := c.CreateMapping(ctx, &skillsv1.CreateMappingRequest{MappingId: "fordon-elektrifiering", Mapping: &skillsv1.CompetenceMapping{
		Subject: "councils/fordon", DisplayName: "Service av elektrifierade fordon",
		Description: "Vad verkstäderna i regionen behöver kunna när elfordonen blir fler.",
		Requirements: []*skillsv1.Requirement{
			{Skill: "skills/hogvoltssakerhet", Level: 3, Headcount: 120},
			{Skill: "skills/service-elektrifierade-drivlinor", Level: 3, Headcount: 80},
			{Skill: "skills/felsokning-elsystem", Level: 2, Headcount: 60},
		},
	}})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("mapping: %w", err)
	}
	for _, v := range demoValidations {
		val := &skillsv1.IndustryValidation{Mapping: DemoMapping, PersonReference: v.person,
			Assessor: "Branschvalidering fordon, ackrediterat testcenter", AssessedOn: &date.Date{Year: 2026, Month: 2, Day: 10}}
		for _, skill := range []string{"hogvoltssakerhet", "service-elektrifierade-drivlinor", "felsokning-elsystem"} {
			if level, ok := v.results[skill]; ok {
				val.Results = append(val.Results, &skillsv1.AssessedSkill{Skill: "skills/" + skill, Level: level})
			}
		}
		_, err := c.CreateValidation(ctx, &skillsv1.CreateValidationRequest{ValidationId: v.id, Validation: val})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("validation %s: %w", v.id, err)
		}
	}
	_, err = c.CreateCertificate(ctx, &skillsv1.CreateCertificateRequest{CertificateId: "fordon-p1001", Certificate: &skillsv1.CompetenceCertificate{
		HolderReference: "participants/demo-1001", Evidence: "validations/fordon-p1001",
		IssuedOn: &date.Date{Year: 2026, Month: 2, Day: 12},
		Skills: []*skillsv1.CertifiedSkill{
			{Skill: "skills/hogvoltssakerhet", Level: 3}, {Skill: "skills/felsokning-elsystem", Level: 3},
		},
	}})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("certificate: %w", err)
	}
	return nil
}
