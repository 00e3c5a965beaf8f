package councils

import (
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
)

// Policy is who may call what on the councils service (policy_test.go
// proves every cell over gRPC):
//
//   - the councils themselves are a public directory: every role reads
//     them, only staff change them;
//   - a council principal works on its own needs: creates, edits, submits
//     and withdraws (closes) them, reads and lists them (councils/- is
//     narrowed to its own), and nothing of another council's;
//   - approving, rejecting, procurement and fulfilment are the hub's
//     decisions: staff only;
//   - partners, companies, providers and auditors see no needs: partners
//     get aggregates (a later statistics RPC), auditors the audit log;
//   - a council's demand signal (notices summed by municipality and kind)
//     is an aggregate: its own council, staff, partners and auditors read
//     it.
var Policy = &auth.Policy{
	Service:  councilsv1.CouncilsService_ServiceDesc.ServiceName,
	Keyspace: Keyspace,
	Rules: map[string]auth.Rule{
		"CreateCouncil": {Write: true, Roles: staff},
		"GetCouncil":    {Resource: "name", Roles: auth.Everyone()},
		"ListCouncils":  {Roles: auth.Everyone()},
		"UpdateCouncil": {Write: true, Resource: "council.name", Roles: staff},
		"DeleteCouncil": {Write: true, Resource: "name", Roles: staff},

		"CreateNeed":           {Write: true, Resource: "parent", Roles: staffOrOwnCouncil},
		"GetNeed":              {Resource: "name", Roles: staffOrOwnCouncil},
		"ListNeeds":            {Resource: "parent", Roles: staffOrOwnCouncil},
		"UpdateNeed":           {Write: true, Resource: "need.name", Roles: staffOrOwnCouncil},
		"SubmitNeed":           {Write: true, Resource: "name", Roles: staffOrOwnCouncil},
		"CloseNeed":            {Write: true, Resource: "name", Roles: staffOrOwnCouncil},
		"ApproveNeed":          {Write: true, Resource: "name", Roles: staff},
		"RejectNeed":           {Write: true, Resource: "name", Roles: staff},
		"StartNeedProcurement": {Write: true, Resource: "name", Roles: staff},
		"FulfilNeed":           {Write: true, Resource: "name", Roles: staff},

		"GetDemandSignal": {Resource: "name", Roles: staffOrOwnCouncil.With(auth.Partner, auth.Any).With(auth.Auditor, auth.Any)},
	},
}

var (
	staff             = auth.Only(auth.Staff)
	staffOrOwnCouncil = staff.With(auth.Council, auth.Own)
)
