package access

import (
	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
)

// Policy is who may call what on the access service: keys are staff
// business, the audit log is for staff and auditors, and anyone
// authenticated may ask who they are (which is how other services verify a
// key). policy_test.go proves every cell of it over gRPC.
var Policy = &auth.Policy{
	Service:  accessv1.AccessService_ServiceDesc.ServiceName,
	Keyspace: Keyspace,
	Rules: map[string]auth.Rule{
		"CreateApiKey":     {Write: true, Roles: auth.Only(auth.Staff)},
		"GetApiKey":        {Resource: "name", Roles: auth.Only(auth.Staff)},
		"ListApiKeys":      {Roles: auth.Only(auth.Staff)},
		"RevokeApiKey":     {Write: true, Resource: "name", Roles: auth.Only(auth.Staff)},
		"GetPrincipal":     {Roles: auth.Everyone()},
		"GetAuditRecord":   {Resource: "name", Roles: auth.Only(auth.Staff, auth.Auditor)},
		"ListAuditRecords": {Roles: auth.Only(auth.Staff, auth.Auditor)},
	},
}
