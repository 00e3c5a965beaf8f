package skills_test

import (
	"strings"
	"testing"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/kompetensnav/kompetensnav/services/skills"
	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/type/date"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func req(skill string, level, headcount int32) *skillsv1.Requirement {
	return &skillsv1.Requirement{Skill: "skills/" + skill, Level: level, Headcount: headcount}
}

func mapping(subject string, rs ...*skillsv1.Requirement) *skillsv1.CompetenceMapping {
	return &skillsv1.CompetenceMapping{Subject: subject, DisplayName: "Kartläggning " + subject, Requirements: rs}
}

func mustMapping(t *testing.T, e env, id string, m *skillsv1.CompetenceMapping) *skillsv1.CompetenceMapping {
	t.Helper()
	e.clock.tick()
	got, err := e.c.CreateMapping(ctx, &skillsv1.CreateMappingRequest{MappingId: id, Mapping: m})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func result(skill string, level int32) *skillsv1.AssessedSkill {
	return &skillsv1.AssessedSkill{Skill: "skills/" + skill, Level: level}
}

func validation(mapping, person string, on *date.Date, rs ...*skillsv1.AssessedSkill) *skillsv1.IndustryValidation {
	return &skillsv1.IndustryValidation{Mapping: mapping, PersonReference: person, Assessor: "Svetskommissionens testcenter",
		AssessedOn: on, Results: rs}
}

func mustValidation(t *testing.T, e env, id string, v *skillsv1.IndustryValidation) *skillsv1.IndustryValidation {
	t.Helper()
	e.clock.tick()
	got, err := e.c.CreateValidation(ctx, &skillsv1.CreateValidationRequest{ValidationId: id, Validation: v})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

var feb = &date.Date{Year: 2026, Month: 2, Day: 20}

// baseSkills are svetsning, plc and truck.
func baseSkills(t *testing.T, e env) {
	t.Helper()
	mustSkill(t, e, "svetsning", skill("Svetsning", "Welding"))
	mustSkill(t, e, "plc", skill("PLC-programmering", "PLC programming"))
	mustSkill(t, e, "truck", skill("Truckkörning", "Forklift operation"))
}

// Every validation rule of mappings and validations: 400 naming the
// field, nothing written.
func TestMappingAndValidationRulesWriteNothing(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		baseSkills(t, e)
		mustSkill(t, e, "gammal", skill("Gammal färdighet", ""))
		if _, err := e.c.DeprecateSkill(ctx, &skillsv1.DeprecateSkillRequest{Name: "skills/gammal", ReplacedBy: "skills/truck"}); err != nil {
			t.Fatal(err)
		}
		mustMapping(t, e, "fordon", mapping("councils/fordon", req("svetsning", 3, 5)))
		createMapping := func(m *skillsv1.CompetenceMapping) func() error {
			return func() error {
				_, err := e.c.CreateMapping(ctx, &skillsv1.CreateMappingRequest{Mapping: m})
				return err
			}
		}
		createValidation := func(f func(v *skillsv1.IndustryValidation)) func() error {
			return func() error {
				v := validation("mappings/fordon", "participants/anna", feb, result("svetsning", 2))
				f(v)
				_, err := e.c.CreateValidation(ctx, &skillsv1.CreateValidationRequest{Validation: v})
				return err
			}
		}
		cases := []struct {
			name, field string
			call        func() error
		}{
			{"unknown skill", "mapping.requirements[1].skill", createMapping(mapping("councils/fordon", req("svetsning", 3, 5), req("finns-inte", 2, 1)))},
			{"level 6", "mapping.requirements[0].level", createMapping(mapping("councils/fordon", req("svetsning", 6, 5)))},
			{"level 0", "mapping.requirements[0].level", createMapping(mapping("councils/fordon", req("svetsning", 0, 5)))},
			{"headcount 0", "mapping.requirements[0].headcount", createMapping(mapping("councils/fordon", req("svetsning", 3, 0)))},
			{"duplicate skill", "mapping.requirements[1].skill", createMapping(mapping("councils/fordon", req("svetsning", 3, 5), req("svetsning", 2, 1)))},
			{"deprecated skill", "mapping.requirements[0].skill", createMapping(mapping("councils/fordon", req("gammal", 3, 5)))},
			{"no requirements", "mapping.requirements", createMapping(mapping("councils/fordon"))},
			{"subject neither company nor council", "mapping.subject", createMapping(mapping("providers/lernia", req("svetsning", 3, 5)))},
			{"council that does not exist", "mapping.subject", createMapping(mapping("councils/nowhere", req("svetsning", 3, 5)))},
			{"company that does not exist", "mapping.subject", createMapping(mapping("companies/nowhere", req("svetsning", 3, 5)))},
			{"no display name", "mapping.display_name", createMapping(&skillsv1.CompetenceMapping{Subject: "councils/fordon", Requirements: []*skillsv1.Requirement{req("svetsning", 1, 1)}})},
			{"personnummer as person", "validation.person_reference", createValidation(func(v *skillsv1.IndustryValidation) { v.PersonReference = "19640823-3234" })},
			{"personnummer, ten digits", "validation.person_reference", createValidation(func(v *skillsv1.IndustryValidation) { v.PersonReference = "640823-3234" })},
			{"personnummer inside", "validation.person_reference", createValidation(func(v *skillsv1.IndustryValidation) { v.PersonReference = "af:196408233234" })},
			{"samordningsnummer", "validation.person_reference", createValidation(func(v *skillsv1.IndustryValidation) { v.PersonReference = "701063-2391" })},
			{"mistyped personnummer", "validation.person_reference", createValidation(func(v *skillsv1.IndustryValidation) { v.PersonReference = "640823-3235" })},
			{"assessed in the future", "validation.assessed_on", createValidation(func(v *skillsv1.IndustryValidation) { v.AssessedOn = &date.Date{Year: 2026, Month: 3, Day: 3} })},
			{"assessed on no date", "validation.assessed_on", createValidation(func(v *skillsv1.IndustryValidation) { v.AssessedOn = &date.Date{Year: 2026, Month: 2, Day: 30} })},
			{"no assessment date", "validation.assessed_on", createValidation(func(v *skillsv1.IndustryValidation) { v.AssessedOn = nil })},
			{"level 6 held", "validation.results[0].level", createValidation(func(v *skillsv1.IndustryValidation) { v.Results[0].Level = 6 })},
			{"unknown skill held", "validation.results[1].skill", createValidation(func(v *skillsv1.IndustryValidation) {
				v.Results = append(v.Results, result("finns-inte", 1))
			})},
			{"same skill twice", "validation.results[1].skill", createValidation(func(v *skillsv1.IndustryValidation) {
				v.Results = append(v.Results, result("svetsning", 1))
			})},
			{"unknown mapping", "validation.mapping", createValidation(func(v *skillsv1.IndustryValidation) { v.Mapping = "mappings/nej" })},
			{"no assessor", "validation.assessor", createValidation(func(v *skillsv1.IndustryValidation) { v.Assessor = "" })},
			{"no results", "validation.results", createValidation(func(v *skillsv1.IndustryValidation) { v.Results = nil })},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := digest(t, e.rdb)
				msg := testkit.WantBadRequest(t, c.call(), c.field)
				if strings.Contains(msg, "3234") || strings.Contains(msg, "2391") || strings.Contains(msg, "3235") {
					t.Fatalf("the message repeats the number: %s", msg)
				}
				if digest(t, e.rdb) != before {
					t.Fatal("a refused request wrote something")
				}
			})
		}
	})
}

func TestMappings(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		baseSkills(t, e)
		// A council subject is checked with the councils service, a company
		// subject with the companies service.
		calls, companyCalls := e.councils.calls.Load(), e.companies.calls.Load()
		fordon := mustMapping(t, e, "fordon", mapping("councils/fordon", req("svetsning", 3, 5), req("plc", 2, 2)))
		if e.councils.calls.Load() != calls+1 || e.companies.calls.Load() != companyCalls {
			t.Fatal("the council was not checked with the councils service (alone)")
		}
		volvo := mustMapping(t, e, "volvo", mapping("companies/volvo-torslanda", req("truck", 2, 10)))
		if e.councils.calls.Load() != calls+1 || e.companies.calls.Load() != companyCalls+1 || volvo.GetSubject() != "companies/volvo-torslanda" {
			t.Fatal("the company was not checked with the companies service (alone)")
		}
		// Retried with its request id: the first one, nothing new.
		r := &skillsv1.CreateMappingRequest{Mapping: mapping("councils/handel", req("truck", 1, 1)), RequestId: "kartlaggning-1"}
		a, err := e.c.CreateMapping(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.c.CreateMapping(ctx, r)
		if err != nil || b.GetName() != a.GetName() {
			t.Fatalf("retry: %v %v", b, err)
		}
		_, err = e.c.CreateMapping(ctx, &skillsv1.CreateMappingRequest{MappingId: "fordon", Mapping: mapping("councils/fordon", req("truck", 1, 1))})
		wantCode(t, err, codes.AlreadyExists)

		list, err := e.c.ListMappings(ctx, &skillsv1.ListMappingsRequest{Filter: `subject = "councils/fordon"`})
		if err != nil || len(list.GetMappings()) != 1 || list.GetMappings()[0].GetName() != fordon.GetName() {
			t.Fatalf("filtered list: %v %v", list, err)
		}
		all, err := e.c.ListMappings(ctx, &skillsv1.ListMappingsRequest{OrderBy: "display_name desc"})
		if err != nil || len(all.GetMappings()) != 3 || all.GetTotalSize() != 3 {
			t.Fatalf("list: %v %v", all, err)
		}

		// Update: change a level, add a skill; a skill added must be in use.
		up, err := e.c.UpdateMapping(ctx, &skillsv1.UpdateMappingRequest{Mapping: &skillsv1.CompetenceMapping{
			Name: fordon.GetName(), Etag: fordon.GetEtag(), Requirements: []*skillsv1.Requirement{req("svetsning", 4, 5), req("plc", 2, 2), req("truck", 1, 3)}}})
		if err != nil || len(up.GetRequirements()) != 3 || up.GetRequirements()[0].GetLevel() != 4 {
			t.Fatalf("update: %v %v", up, err)
		}
		_, err = e.c.UpdateMapping(ctx, &skillsv1.UpdateMappingRequest{Mapping: &skillsv1.CompetenceMapping{Name: fordon.GetName(), Etag: fordon.GetEtag(), DisplayName: "x"}})
		wantCode(t, err, codes.Aborted)
		_, err = e.c.UpdateMapping(ctx, &skillsv1.UpdateMappingRequest{Mapping: &skillsv1.CompetenceMapping{Name: fordon.GetName(), Subject: "councils/nowhere"}})
		testkit.WantBadRequest(t, err, "mapping.subject")

		// A skill deprecated after it was mapped keeps working, and the
		// mapping shows its successor; it may stay in an update but not be
		// added anew.
		mustSkill(t, e, "plc-61131", skill("PLC-programmering enligt IEC 61131-3", ""))
		if _, err := e.c.DeprecateSkill(ctx, &skillsv1.DeprecateSkillRequest{Name: "skills/plc", ReplacedBy: "skills/plc-61131"}); err != nil {
			t.Fatal(err)
		}
		got, err := e.c.GetMapping(ctx, &skillsv1.GetMappingRequest{Name: fordon.GetName()})
		if err != nil || got.GetRequirements()[1].GetSkill() != "skills/plc" || got.GetRequirements()[1].GetReplacedBy() != "skills/plc-61131" ||
			got.GetRequirements()[0].GetReplacedBy() != "" {
			t.Fatalf("mapping with a deprecated skill: %v %v", got, err)
		}
		kept, err := e.c.UpdateMapping(ctx, &skillsv1.UpdateMappingRequest{Mapping: &skillsv1.CompetenceMapping{Name: fordon.GetName(), DisplayName: "Fordonsrådets kartläggning"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
		if err != nil || kept.GetRequirements()[1].GetReplacedBy() != "skills/plc-61131" {
			t.Fatalf("update keeping a deprecated skill: %v %v", kept, err)
		}
		_, err = e.c.UpdateMapping(ctx, &skillsv1.UpdateMappingRequest{Mapping: &skillsv1.CompetenceMapping{Name: volvo.GetName(),
			Requirements: []*skillsv1.Requirement{req("truck", 2, 10), req("plc", 1, 1)}}})
		testkit.WantBadRequest(t, err, "mapping.requirements[1].skill")
		// What is stored is never the successor: that is worked out on read.
		raw, err := e.rdb.HGet(ctx, "kn:{skills}:mapping:fordon", "pb").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		stored := &skillsv1.CompetenceMapping{}
		if err := proto.Unmarshal(raw, stored); err != nil || stored.GetRequirements()[1].GetReplacedBy() != "" {
			t.Fatalf("stored %v %v", stored, err)
		}

		// A mapping with validations stays; one without can go.
		mustValidation(t, e, "anna", validation(fordon.GetName(), "participants/anna", feb, result("svetsning", 2)))
		_, err = e.c.DeleteMapping(ctx, &skillsv1.DeleteMappingRequest{Name: fordon.GetName()})
		wantCode(t, err, codes.FailedPrecondition)
		if _, err := e.c.DeleteMapping(ctx, &skillsv1.DeleteMappingRequest{Name: volvo.GetName()}); err != nil {
			t.Fatal(err)
		}
		_, err = e.c.GetMapping(ctx, &skillsv1.GetMappingRequest{Name: volvo.GetName()})
		wantCode(t, err, codes.NotFound)
	})
}

func TestValidations(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		baseSkills(t, e)
		m := mustMapping(t, e, "fordon", mapping("councils/fordon", req("svetsning", 3, 5)))
		// Today is fine (2026-03-02 in Sweden).
		v := mustValidation(t, e, "anna", validation(m.GetName(), "participants/anna", &date.Date{Year: 2026, Month: 3, Day: 2}, result("svetsning", 2), result("truck", 0)))
		if v.GetPersonReference() != "participants/anna" || v.GetName() != "validations/anna" || v.GetEtag() == "" {
			t.Fatalf("validation %v", v)
		}
		// An external id that holds digits but no personal identity number.
		mustValidation(t, e, "ext", validation(m.GetName(), "af-arende-2026-0042", feb, result("svetsning", 4)))

		list, err := e.c.ListValidations(ctx, &skillsv1.ListValidationsRequest{Filter: `mapping = "mappings/fordon"`, OrderBy: "assessed_on"})
		if err != nil || len(list.GetValidations()) != 2 || list.GetValidations()[0].GetName() != "validations/ext" {
			t.Fatalf("list: %v %v", list, err)
		}
		// The person reference never leaves in an event.
		msgs, err := e.rdb.XRange(ctx, skills.Keyspace.Events(), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, msg := range msgs {
			if msg.Values["type"] != "kompetensnav.skills.v1.validation.created" {
				continue
			}
			seen++
			ev := &commonv1.Event{}
			if err := proto.Unmarshal([]byte(msg.Values["event"].(string)), ev); err != nil {
				t.Fatal(err)
			}
			data := &skillsv1.IndustryValidation{}
			if err := anypb.UnmarshalTo(ev.GetData(), data, proto.UnmarshalOptions{}); err != nil {
				t.Fatal(err)
			}
			if data.GetPersonReference() != "" || data.GetName() == "" || len(data.GetResults()) == 0 {
				t.Fatalf("event data %v", data)
			}
		}
		if seen != 2 {
			t.Fatalf("%d validation events", seen)
		}
		_, err = e.c.GetValidation(ctx, &skillsv1.GetValidationRequest{Name: "validations/nej"})
		wantCode(t, err, codes.NotFound)
		_, err = e.c.CreateValidation(ctx, &skillsv1.CreateValidationRequest{ValidationId: "anna",
			Validation: validation(m.GetName(), "participants/anna", feb, result("svetsning", 2))})
		wantCode(t, err, codes.AlreadyExists)
	})
}

// Without the councils or companies service a subject cannot be checked:
// the create is UNAVAILABLE and writes nothing.
func TestPeersUnavailable(t *testing.T) {
	testkit.Backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		e := startWithPeers(t, rdb, "127.0.0.1:1")
		mustSkill(t, e, "svetsning", skill("Svetsning", ""))
		before := digest(t, e.rdb)
		for subject, service := range map[string]string{"councils/fordon": "councils", "companies/volvo": "companies"} {
			_, err := e.c.CreateMapping(ctx, &skillsv1.CreateMappingRequest{Mapping: mapping(subject, req("svetsning", 1, 1))})
			if st := wantCode(t, err, codes.Unavailable); !strings.Contains(st.Message(), "the "+service+" service is unavailable") {
				t.Fatal(st.Message())
			}
		}
		if digest(t, e.rdb) != before {
			t.Fatal("written without the peer's answer")
		}
	})
}
