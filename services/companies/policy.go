package companies

import (
	companiesv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/companies/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
)

// Policy is who may call what on the companies service (policy_test.go
// proves every cell over gRPC):
//
//   - staff register companies and do everything else;
//   - a company principal works on its own company only: reads and
//     updates it, records and reads its notices, reads its coaching;
//   - councils read companies and notices (their industry's demand
//     signal), and the summary; partners and auditors only the summary, an
//     aggregate; providers nothing;
//   - deleting, and holding or cancelling coaching (the hub's coaches), is
//     staff's.
var Policy = &auth.Policy{
	Service:  companiesv1.CompaniesService_ServiceDesc.ServiceName,
	Keyspace: Keyspace,
	Rules: map[string]auth.Rule{
		"CreateCompany": {Write: true, Roles: staff},
		"GetCompany":    {Resource: "name", Roles: staffOwnOrCouncil},
		"LookupCompany": {Roles: auth.Only(auth.Staff, auth.Council)},
		"ListCompanies": {Roles: auth.Only(auth.Staff, auth.Council)},
		"UpdateCompany": {Write: true, Resource: "company.name", Roles: staffOrOwn},
		"DeleteCompany": {Write: true, Resource: "name", Roles: staff},

		"CreateNotice":     {Write: true, Resource: "parent", Roles: staffOrOwn},
		"GetNotice":        {Resource: "name", Roles: staffOwnOrCouncil},
		"ListNotices":      {Resource: "parent", Roles: staffOwnOrCouncil},
		"DeleteNotice":     {Write: true, Resource: "name", Roles: staff},
		"SummarizeNotices": {Roles: auth.Only(auth.Staff, auth.Council, auth.Partner, auth.Auditor)},

		"CreateCoachingSession": {Write: true, Resource: "parent", Roles: staff},
		"GetCoachingSession":    {Resource: "name", Roles: staffOrOwn},
		"ListCoachingSessions":  {Resource: "parent", Roles: staffOrOwn},
		"HoldCoachingSession":   {Write: true, Resource: "name", Roles: staff},
		"CancelCoachingSession": {Write: true, Resource: "name", Roles: staff},
	},
}

var (
	staff             = auth.Only(auth.Staff)
	staffOrOwn        = staff.With(auth.Company, auth.Own)
	staffOwnOrCouncil = auth.Only(auth.Staff, auth.Council).With(auth.Company, auth.Own)
)
