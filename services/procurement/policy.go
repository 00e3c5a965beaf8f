package procurement

import (
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
)

// Policy is who may call what on the procurement service (policy_test.go
// proves every cell over gRPC):
//
//   - providers and framework agreements are a public register, as public
//     procurement is: every role reads them; only staff change them;
//   - procurement is the hub's: staff create call-offs, award, cancel, and
//     see the queue of approved needs;
//   - a provider principal sees and answers only its own: the call-offs
//     it was offered or invited to bid on (GetCallOff checks the response's
//     invited_providers; ListCallOffs must ask for `providers/-`, narrowed
//     to its own), accepts or declines only an offer made to it (naming
//     itself in `provider`), bids only as itself, and lists only its own
//     bid;
//   - the OCDS export is open data about awards: staff, auditors and
//     partners (aggregate users) read it; providers get their own view
//     above, councils and companies follow their needs in councils.
var Policy = &auth.Policy{
	Service:  procurementv1.ProcurementService_ServiceDesc.ServiceName,
	Keyspace: Keyspace,
	Rules: map[string]auth.Rule{
		"CreateProvider": {Write: true, Roles: staff},
		"GetProvider":    {Resource: "name", Roles: auth.Everyone()},
		"ListProviders":  {Roles: auth.Everyone()},
		"UpdateProvider": {Write: true, Resource: "provider.name", Roles: staff},
		"DeleteProvider": {Write: true, Resource: "name", Roles: staff},

		"CreateFrameworkAgreement":     {Write: true, Roles: staff},
		"GetFrameworkAgreement":        {Resource: "name", Roles: auth.Everyone()},
		"ListFrameworkAgreements":      {Roles: auth.Everyone()},
		"UpdateFrameworkAgreement":     {Write: true, Resource: "framework_agreement.name", Roles: staff},
		"ActivateFrameworkAgreement":   {Write: true, Resource: "name", Roles: staff},
		"TerminateFrameworkAgreement":  {Write: true, Resource: "name", Roles: staff},
		"ExportFrameworkAgreementOcds": {Resource: "name", Roles: auth.Only(auth.Staff, auth.Auditor, auth.Partner)},

		"CreateCallOff":  {Write: true, Roles: staff},
		"GetCallOff":     {Resource: "name", OwnerIn: []string{"invited_providers"}, Roles: staffOrOwnProvider},
		"ListCallOffs":   {Owner: "provider", Roles: staffOrOwnProvider},
		"AcceptCallOff":  {Write: true, Resource: "name", Owner: "provider", Roles: staffOrOwnProvider},
		"DeclineCallOff": {Write: true, Resource: "name", Owner: "provider", Roles: staffOrOwnProvider},
		"AwardCallOff":   {Write: true, Resource: "name", Roles: staff},
		"CancelCallOff":  {Write: true, Resource: "name", Roles: staff},
		"CreateBid":      {Write: true, Resource: "parent", Owner: "bid.provider", Roles: staffOrOwnProvider},
		"ListBids":       {Resource: "parent", Owner: "provider", Roles: staffOrOwnProvider},

		"ListQueuedNeeds": {Roles: staff},
	},
}

var (
	staff              = auth.Only(auth.Staff)
	staffOrOwnProvider = staff.With(auth.Provider, auth.Own)
)
