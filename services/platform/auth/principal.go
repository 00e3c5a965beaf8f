// Package auth is who may call what, done once for every service:
//
//   - authentication: the bearer credential of every call (an API key, the
//     bootstrap key; OIDC tokens plug in as another Authenticator) becomes
//     a Principal with one role;
//   - authorisation: one Policy per service lists every RPC with the roles
//     allowed and whether a bound role (council, company, provider) may act
//     only within its own resource; anything not listed is refused;
//   - property level: response fields marked (kompetensnav.common.v1.sensitive)
//     are cleared for roles that may not see them (Redact);
//   - audit: refusals and reads of sensitive fields are recorded right away,
//     writes by the store in the write's own atomic step (package audit).
//
// The Guard does all of it as gRPC interceptors (server.WithGuard).
package auth

import (
	"context"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
)

// Principal is who a call is from: its id, its role and the resource a
// bound role is bound to.
type Principal = accessv1.Principal

// Role is what a principal may do.
type Role = accessv1.Role

// The roles.
const (
	Staff    = accessv1.Role_ROLE_STAFF
	Council  = accessv1.Role_ROLE_COUNCIL
	Company  = accessv1.Role_ROLE_COMPANY
	Provider = accessv1.Role_ROLE_PROVIDER
	Partner  = accessv1.Role_ROLE_PARTNER
	Auditor  = accessv1.Role_ROLE_AUDITOR
)

// AllRoles is every role, for tests and tables.
var AllRoles = []Role{Staff, Council, Company, Provider, Partner, Auditor}

// BoundCollection is the collection a role's principals are bound to one
// resource of ("councils" for Council), or "" for a role that is not bound.
func BoundCollection(r Role) string {
	switch r {
	case Council:
		return "councils"
	case Company:
		return "companies"
	case Provider:
		return "providers"
	}
	return ""
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext is the principal of the call ctx belongs to, nil outside an
// authenticated call.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
