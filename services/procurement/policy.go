package procurement

import (
	procurementv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/procurement/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
)

// Policy is who may call what on the procurement service.
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
		"ExportFrameworkAgreementOcds": {Resource: "name", Roles: auth.Everyone()},

		"CreateCallOff":  {Write: true, Roles: staff},
		"GetCallOff":     {Resource: "name", Roles: staff},
		"ListCallOffs":   {Roles: staff},
		"AcceptCallOff":  {Write: true, Resource: "name", Roles: staff},
		"DeclineCallOff": {Write: true, Resource: "name", Roles: staff},
		"AwardCallOff":   {Write: true, Resource: "name", Roles: staff},
		"CancelCallOff":  {Write: true, Resource: "name", Roles: staff},
		"CreateBid":      {Write: true, Resource: "parent", Roles: staff},
		"ListBids":       {Resource: "parent", Roles: staff},

		"ListQueuedNeeds": {Roles: staff},
	},
}

var staff = auth.Only(auth.Staff)
