package skills

import (
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
)

// Policy is who may call what on the skills service (policy_test.go proves
// every cell over gRPC):
//
//   - the taxonomy is the platform's shared vocabulary: every role reads
//     and searches it, only staff change it;
//   - mappings, validations and certificates are the hub's records of what
//     companies need and what people can, with personal references in
//     them: staff only (a council or company seeing its own mappings comes
//     when mappings carry their subject in their name or the guard learns
//     to check a stored owner);
//   - a participant's certificates (ListParticipantCertificates) are
//     personal too: staff only;
//   - the issuer's public key and verification are for anyone holding a
//     credential: every role.
var Policy = &auth.Policy{
	Service:  skillsv1.SkillsService_ServiceDesc.ServiceName,
	Keyspace: Keyspace,
	Rules: map[string]auth.Rule{
		"CreateSkill":    {Write: true, Roles: staff},
		"GetSkill":       {Resource: "name", Roles: auth.Everyone()},
		"BatchGetSkills": {Roles: auth.Everyone()},
		"ListSkills":     {Roles: auth.Everyone()},
		"UpdateSkill":    {Write: true, Resource: "skill.name", Roles: staff},
		"DeprecateSkill": {Write: true, Resource: "name", Roles: staff},
		"SearchSkills":   {Roles: auth.Everyone()},
		"ImportSkills":   {Write: true, Roles: staff},

		"CreateMapping": {Write: true, Resource: "mapping.subject", Roles: staff},
		"GetMapping":    {Resource: "name", Roles: staff},
		"ListMappings":  {Roles: staff},
		"UpdateMapping": {Write: true, Resource: "mapping.name", Roles: staff},
		"DeleteMapping": {Write: true, Resource: "name", Roles: staff},
		"AnalyzeGap":    {Resource: "name", Roles: staff},
		"ProposeNeed":   {Resource: "name", Roles: staff},

		"CreateValidation": {Write: true, Resource: "validation.mapping", Roles: staff},
		"GetValidation":    {Resource: "name", Roles: staff},
		"ListValidations":  {Roles: staff},

		"CreateCertificate":        {Write: true, Roles: staff},
		"GetCertificate":           {Resource: "name", Roles: staff},
		"ListCertificates":         {Roles: staff},
		"GetCertificateCredential": {Resource: "name", Roles: staff},
		"RevokeCertificate":        {Write: true, Resource: "name", Roles: staff},
		"GetIssuerKeySet":          {Roles: auth.Everyone()},
		"VerifyCredential":         {Roles: auth.Everyone()},

		// A person's certificates are personal data: staff's, like every
		// other certificate read. (Not the course's provider: it reports
		// the result itself, and a provider key, bound to
		// providers/{provider}, cannot be scoped to the participants of its
		// own courses here.)
		"ListParticipantCertificates": {Resource: "parent", Roles: staff},
	},
}

var staff = auth.Only(auth.Staff)
