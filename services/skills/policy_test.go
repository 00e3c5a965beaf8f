package skills_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/kompetensnav/kompetensnav/services/skills"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// principal is one column of the matrix: a role, bound where it is bound.
type principal struct {
	label   string
	role    auth.Role
	subject string
}

// The bound roles are bound to the subjects of the "own" mappings: the
// council to councils/fordon, the company to companies/volvo. Nothing of
// the skills service is scoped to its owner (see Policy), so own and
// other answer the same; the matrix proves that too.
var principals = []principal{
	{"staff", auth.Staff, ""},
	{"council", auth.Council, "councils/fordon"},
	{"company", auth.Company, "companies/volvo"},
	{"provider", auth.Provider, "providers/lernia"},
	{"partner", auth.Partner, ""},
	{"auditor", auth.Auditor, ""},
}

const (
	allowed = codes.OK
	denied  = codes.PermissionDenied
)

type want map[string]codes.Code

var (
	onlyStaff = want{"staff": allowed, "council": denied, "company": denied, "provider": denied, "partner": denied, "auditor": denied}
	everyone  = want{"staff": allowed, "council": allowed, "company": allowed, "provider": allowed, "partner": allowed, "auditor": allowed}
)

// matrixRow is one RPC: setup makes (as staff) what the call needs for a
// side ("own" or "other") and returns the name the call acts on.
type matrixRow struct {
	method string
	// sensitive: a successful call returns personal data to staff, which
	// leaves a sensitive-read record.
	sensitive bool
	setup     func(t *testing.T, e env, side string) string
	call      func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error
	want      want
}

var seq int

func fresh(prefix string) string { seq++; return fmt.Sprintf("%s-%d", prefix, seq) }

// subjectOf is the mapping subject of a side.
func subjectOf(side string) string {
	if side == "own" {
		return "companies/volvo"
	}
	return "companies/scania"
}

func aSkill(t *testing.T, e env, _ string) string {
	return mustSkill(t, e, fresh("s"), skill("Färdighet", "")).GetName()
}

func aMapping(t *testing.T, e env, side string) string {
	return mustMapping(t, e, fresh("m"), mapping(subjectOf(side), req("svetsning", 3, 2))).GetName()
}

func aValidation(t *testing.T, e env, side string) string {
	m := aMapping(t, e, side)
	return mustValidation(t, e, fresh("v"), validation(m, "participants/anna", feb, result("svetsning", 2))).GetName()
}

func aCertificate(t *testing.T, e env, _ string) string {
	c, err := e.c.CreateCertificate(ctx, &skillsv1.CreateCertificateRequest{CertificateId: fresh("c"),
		Certificate: certificate("participants/anna", "kurs-17", certified("svetsning", 2))})
	if err != nil {
		t.Fatal(err)
	}
	return c.GetName()
}

func nothing(*testing.T, env, string) string { return "" }

func err1[T any](_ T, err error) error { return err }

// The matrix: every RPC of the skills service × every role × an object of
// its own and another's, over real gRPC through the guard, with the audit
// records each call must leave.
var skillsMatrix = []matrixRow{
	{"CreateSkill", false, nothing, func(ctx context.Context, c skillsv1.SkillsServiceClient, _ string) error {
		return err1(c.CreateSkill(ctx, &skillsv1.CreateSkillRequest{Skill: skill("Ny", "")}))
	}, onlyStaff},
	{"GetSkill", false, aSkill, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.GetSkill(ctx, &skillsv1.GetSkillRequest{Name: target}))
	}, everyone},
	{"BatchGetSkills", false, aSkill, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.BatchGetSkills(ctx, &skillsv1.BatchGetSkillsRequest{Names: []string{target, "skills/svetsning"}}))
	}, everyone},
	{"ListSkills", false, nothing, func(ctx context.Context, c skillsv1.SkillsServiceClient, _ string) error {
		return err1(c.ListSkills(ctx, &skillsv1.ListSkillsRequest{}))
	}, everyone},
	{"UpdateSkill", false, aSkill, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.UpdateSkill(ctx, &skillsv1.UpdateSkillRequest{Skill: &skillsv1.Skill{Name: target, Description: fresh("beskrivning")},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}}))
	}, onlyStaff},
	{"DeprecateSkill", false, aSkill, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.DeprecateSkill(ctx, &skillsv1.DeprecateSkillRequest{Name: target, ReplacedBy: "skills/svetsning"}))
	}, onlyStaff},
	{"SearchSkills", false, nothing, func(ctx context.Context, c skillsv1.SkillsServiceClient, _ string) error {
		return err1(c.SearchSkills(ctx, &skillsv1.SearchSkillsRequest{Query: "svets"}))
	}, everyone},
	{"ImportSkills", false, nothing, func(ctx context.Context, c skillsv1.SkillsServiceClient, _ string) error {
		return err1(c.ImportSkills(ctx, &skillsv1.ImportSkillsRequest{Skills: []*skillsv1.Skill{
			{Name: "skills/" + fresh("i"), PreferredLabel: map[string]string{"sv": "Importerad"}}}}))
	}, onlyStaff},
	{"CreateMapping", false, func(_ *testing.T, _ env, side string) string { return subjectOf(side) },
		func(ctx context.Context, c skillsv1.SkillsServiceClient, subject string) error {
			return err1(c.CreateMapping(ctx, &skillsv1.CreateMappingRequest{Mapping: mapping(subject, req("svetsning", 1, 1))}))
		}, onlyStaff},
	{"GetMapping", false, aMapping, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.GetMapping(ctx, &skillsv1.GetMappingRequest{Name: target}))
	}, onlyStaff},
	{"ListMappings", false, aMapping, func(ctx context.Context, c skillsv1.SkillsServiceClient, _ string) error {
		return err1(c.ListMappings(ctx, &skillsv1.ListMappingsRequest{}))
	}, onlyStaff},
	{"UpdateMapping", false, aMapping, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.UpdateMapping(ctx, &skillsv1.UpdateMappingRequest{Mapping: &skillsv1.CompetenceMapping{Name: target, DisplayName: fresh("Namn")}}))
	}, onlyStaff},
	{"DeleteMapping", false, aMapping, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.DeleteMapping(ctx, &skillsv1.DeleteMappingRequest{Name: target}))
	}, onlyStaff},
	{"AnalyzeGap", false, aMapping, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.AnalyzeGap(ctx, &skillsv1.AnalyzeGapRequest{Name: target}))
	}, onlyStaff},
	{"ProposeNeed", false, aMapping, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.ProposeNeed(ctx, &skillsv1.ProposeNeedRequest{Name: target}))
	}, onlyStaff},
	{"CreateValidation", true, aMapping, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.CreateValidation(ctx, &skillsv1.CreateValidationRequest{Validation: validation(target, "participants/bo", feb, result("svetsning", 1))}))
	}, onlyStaff},
	{"GetValidation", true, aValidation, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.GetValidation(ctx, &skillsv1.GetValidationRequest{Name: target}))
	}, onlyStaff},
	{"ListValidations", true, aValidation, func(ctx context.Context, c skillsv1.SkillsServiceClient, _ string) error {
		return err1(c.ListValidations(ctx, &skillsv1.ListValidationsRequest{}))
	}, onlyStaff},
	{"CreateCertificate", true, nothing, func(ctx context.Context, c skillsv1.SkillsServiceClient, _ string) error {
		return err1(c.CreateCertificate(ctx, &skillsv1.CreateCertificateRequest{Certificate: certificate("participants/bo", "kurs-18", certified("svetsning", 1))}))
	}, onlyStaff},
	{"GetCertificate", true, aCertificate, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.GetCertificate(ctx, &skillsv1.GetCertificateRequest{Name: target}))
	}, onlyStaff},
	{"ListCertificates", true, aCertificate, func(ctx context.Context, c skillsv1.SkillsServiceClient, _ string) error {
		return err1(c.ListCertificates(ctx, &skillsv1.ListCertificatesRequest{}))
	}, onlyStaff},
	{"ListParticipantCertificates", true, func(t *testing.T, e env, side string) string {
		aCertificate(t, e, side)
		return "participants/anna"
	}, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.ListParticipantCertificates(ctx, &skillsv1.ListParticipantCertificatesRequest{Parent: target}))
	}, onlyStaff},
	{"GetCertificateCredential", false, aCertificate, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.GetCertificateCredential(ctx, &skillsv1.GetCertificateCredentialRequest{Name: target}))
	}, onlyStaff},
	{"RevokeCertificate", true, aCertificate, func(ctx context.Context, c skillsv1.SkillsServiceClient, target string) error {
		return err1(c.RevokeCertificate(ctx, &skillsv1.RevokeCertificateRequest{Name: target, Reason: "fel"}))
	}, onlyStaff},
	{"GetIssuerKeySet", false, nothing, func(ctx context.Context, c skillsv1.SkillsServiceClient, _ string) error {
		return err1(c.GetIssuerKeySet(ctx, &skillsv1.GetIssuerKeySetRequest{}))
	}, everyone},
	{"VerifyCredential", false, nothing, func(ctx context.Context, c skillsv1.SkillsServiceClient, _ string) error {
		return err1(c.VerifyCredential(ctx, &skillsv1.VerifyCredentialRequest{Jwt: "x.y.z"}))
	}, everyone},
}

func auditRecords(t *testing.T, rdb redis.UniversalClient) []*accessv1.AuditRecord {
	t.Helper()
	msgs, err := rdb.XRange(ctx, skills.Keyspace.Audit(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*accessv1.AuditRecord, len(msgs))
	for i, m := range msgs {
		out[i] = &accessv1.AuditRecord{}
		raw, _ := m.Values[audit.Field].(string)
		if err := proto.Unmarshal([]byte(raw), out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestPolicyMatrix(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		mustSkill(t, e, "svetsning", skill("Svetsning", "Welding"))
		methods := map[string]bool{}
		for _, row := range skillsMatrix {
			methods[row.method] = true
			for _, p := range principals {
				exp, listed := row.want[p.label]
				if !listed {
					t.Fatalf("%s: no expectation for %s", row.method, p.label)
				}
				for _, side := range []string{"own", "other"} {
					t.Run(fmt.Sprintf("%s/%s/%s", row.method, p.label, side), func(t *testing.T) {
						target := row.setup(t, e, side)
						before := len(auditRecords(t, e.rdb))
						e.clock.tick()
						err := row.call(testkit.AsRole(ctx, p.role, p.subject), e.c, target)
						got := status.Code(err)
						if got != exp {
							t.Fatalf("got %v, want %v", err, exp)
						}
						checkAudit(t, e, row, p, before, got)
					})
				}
			}
		}
		ms := skillsv1.File_kompetensnav_skills_v1_skills_proto.Services().Get(0).Methods()
		for i := range ms.Len() {
			if name := string(ms.Get(i).Name()); !methods[name] {
				t.Errorf("the matrix has no row for %s", name)
			}
		}
		if len(skills.Policy.Rules) != ms.Len() {
			t.Errorf("the policy has %d rules for %d methods", len(skills.Policy.Rules), ms.Len())
		}
	})
}

// checkAudit: a refused call leaves exactly one denial record; a write one
// write record; a read none; and a call that returns personal data to
// staff one sensitive-read record besides.
func checkAudit(t *testing.T, e env, row matrixRow, p principal, before int, got codes.Code) {
	t.Helper()
	recs := auditRecords(t, e.rdb)[before:]
	read := !skills.Policy.Rules[row.method].Write
	var kinds []accessv1.AuditRecord_Kind
	switch {
	case got != allowed:
		kinds = []accessv1.AuditRecord_Kind{accessv1.AuditRecord_KIND_DENIAL}
	case !read:
		kinds = []accessv1.AuditRecord_Kind{accessv1.AuditRecord_KIND_WRITE}
	}
	if got == allowed && row.sensitive {
		kinds = append(kinds, accessv1.AuditRecord_KIND_SENSITIVE_READ)
	}
	if len(recs) != len(kinds) {
		t.Fatalf("%d audit records (%v), want %v: %v", len(recs), got, kinds, recs)
	}
	wantID := "test/" + strings.ToLower(strings.TrimPrefix(p.role.String(), "ROLE_"))
	for i, r := range recs {
		if r.GetKind() != kinds[i] || r.GetPrincipal() != wantID || r.GetRole() != p.role || r.GetPrincipalSubject() != p.subject ||
			r.GetService() != "skills" || r.GetMethod() != "kompetensnav.skills.v1.SkillsService/"+row.method ||
			r.GetOutcome() != audit.OutcomeName(got) || r.GetTime() == nil {
			t.Fatalf("audit record %v", r)
		}
		if r.GetKind() == accessv1.AuditRecord_KIND_WRITE && r.GetResource() == "" {
			t.Fatalf("a write record names no resource: %v", r)
		}
	}
}
