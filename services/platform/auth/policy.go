package auth

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// A Policy is one service's table of who may call what: a Rule for every
// RPC. A method without a rule is refused (deny by default), and
// Guard.Covers refuses to serve a service whose table misses one.
//
// It is a Go map rather than proto method options: the table reads as one
// page next to the matrix test that proves it, its scopes are Go values
// the guard acts on, changing who may do what regenerates no API, and a
// rule for a method that does not exist fails Covers as surely as a
// missing one.
type Policy struct {
	// Service is the full gRPC service name,
	// "kompetensnav.councils.v1.CouncilsService".
	Service string
	// Keyspace is the service's; refusals and sensitive reads are recorded
	// on its audit stream.
	Keyspace store.Keyspace
	// Rules by method name ("ApproveNeed").
	Rules map[string]Rule
}

// A Rule says who may call one RPC.
type Rule struct {
	// Write marks an RPC that changes something: its successful call is
	// recorded in the audit log with its write.
	Write bool
	// Resource is the request field that names the resource the call
	// touches, as a dotted path ("name", "parent", "need.name"); empty for
	// calls that touch no one resource (a list of everything, a create of a
	// top-level resource). Own scopes check it; audit records name it.
	Resource string
	// Owner, when set, is the request field an Own scope checks instead of
	// Resource: the call touches Resource (named so in the audit record) on
	// behalf of the bound resource Owner names, e.g. a provider answering
	// an offer (Resource "name", the call-off; Owner "provider", itself).
	// The wildcard ("providers/-") is narrowed to the principal's own, as
	// for Resource.
	Owner string
	// OwnerIn, when set (and Owner is not), moves a unary read's Own check
	// to the response: a bound role gets the response only if one of these
	// response fields (dotted paths to a string or a repeated string) names
	// its resource or something under it, e.g. a call-off's
	// "invited_providers". Otherwise the call is PERMISSION_DENIED, and so
	// is a NOT_FOUND, so that the answer reveals nothing about existence.
	// For reads only: the handler has run when it is checked.
	OwnerIn []string
	// Roles may call the RPC, each with a scope. A role not listed may not.
	Roles Roles
	// SensitiveTo are roles besides staff that see fields marked
	// (kompetensnav.common.v1.sensitive) in the response; everyone else
	// gets them cleared.
	SensitiveTo []Role
}

// Roles maps the roles allowed to their scope.
type Roles map[Role]Scope

// Scope limits what a role may touch.
type Scope int

const (
	// Any resource.
	Any Scope = iota + 1
	// Own: only the principal's bound resource and what lies under it
	// (councils/fordon and councils/fordon/needs/…, for a council bound
	// to councils/fordon). The wildcard parent of its collection
	// ("councils/-") is narrowed to its own, so a list across all returns
	// only its own; any other resource is PERMISSION_DENIED, whether or not
	// it exists (AIP-211: the answer reveals nothing about existence).
	Own
)

// Only is Roles with each of roles at scope Any.
func Only(roles ...Role) Roles {
	r := Roles{}
	for _, role := range roles {
		r[role] = Any
	}
	return r
}

// Everyone is every role at scope Any.
func Everyone() Roles { return Only(AllRoles...) }

// With returns a copy of r with role at scope s.
func (r Roles) With(role Role, s Scope) Roles {
	out := Roles{role: s}
	for k, v := range r {
		if k != role {
			out[k] = v
		}
	}
	return out
}

// publicServices answer without credentials: health checks (load balancers
// and the gateway's readiness probe) and, where it is switched on,
// reflection (the schema, which the OpenAPI document publishes anyway).
var publicServices = []string{
	"grpc.health.v1.Health",
	"grpc.reflection.v1.ServerReflection",
	"grpc.reflection.v1alpha.ServerReflection",
}

// IsPublic reports whether a full method ("/grpc.health.v1.Health/Check")
// is served without credentials.
func IsPublic(fullMethod string) bool {
	svc, _ := splitMethod(fullMethod)
	return slices.Contains(publicServices, svc)
}

func splitMethod(fullMethod string) (service, method string) {
	s := strings.TrimPrefix(fullMethod, "/")
	i := strings.LastIndex(s, "/")
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+1:]
}

// check makes sure the policy can be enforced as written.
func (p *Policy) check() error {
	for name, r := range p.Rules {
		for role, scope := range r.Roles {
			if scope == Own && (BoundCollection(role) == "" || (r.Resource == "" && r.Owner == "" && len(r.OwnerIn) == 0)) {
				return fmt.Errorf("%s.%s: scope Own for %s needs a bound role and a Resource, Owner or OwnerIn field", p.Service, name, role)
			}
			if scope == Own && r.Write && r.Owner == "" && len(r.OwnerIn) > 0 {
				return fmt.Errorf("%s.%s: OwnerIn is checked after the handler ran, which a write cannot wait for; use Owner", p.Service, name)
			}
			if scope != Any && scope != Own {
				return fmt.Errorf("%s.%s: %s has no scope", p.Service, name, role)
			}
		}
	}
	return nil
}

// authorize decides whether p may make the call rule governs with req, and
// narrows a wildcard parent to p's own for an Own scope (rewriting req).
func authorize(p *Principal, method string, rule Rule, req any) error {
	scope, ok := rule.Roles[p.GetRole()]
	if !ok {
		return status.Errorf(codes.PermissionDenied, "%s may not call %s", String(p), method)
	}
	if scope == Any || req == nil {
		return nil
	}
	m, ok := req.(proto.Message)
	if !ok {
		return status.Errorf(codes.PermissionDenied, "%s: request cannot be checked", method)
	}
	switch {
	case rule.Owner != "":
		return own(p, method, m.ProtoReflect(), rule.Owner)
	case len(rule.OwnerIn) > 0:
		return bound(p, method) // the rest is checked on the response (ownsResponse)
	}
	return own(p, method, m.ProtoReflect(), rule.Resource)
}

// bound refuses a principal of a bound role that is bound to nothing.
func bound(p *Principal, method string) error {
	collection := BoundCollection(p.GetRole())
	if s := p.GetSubject(); s == "" || !strings.HasPrefix(s, collection+"/") {
		return status.Errorf(codes.PermissionDenied, "%s (%s) is bound to no %s and may not call %s", p.GetId(), p.GetRole(), collection, method)
	}
	return nil
}

// checksResponse reports whether the rule's Own check for p is made on
// the response (Rule.OwnerIn).
func (r Rule) checksResponse(p *Principal) bool {
	return r.Owner == "" && len(r.OwnerIn) > 0 && r.Roles[p.GetRole()] == Own
}

// ownsResponse is the OwnerIn check: err is the handler's, resource what
// the request names. A response that names p's resource in one of the
// rule's fields is p's; anything else (including NOT_FOUND) is refused
// with one answer, whatever exists.
func ownsResponse(p *Principal, method string, rule Rule, resource string, resp any, err error) error {
	refused := status.Errorf(codes.PermissionDenied, "%s may see only what concerns %s; %q does not, or does not exist", String(p), p.GetSubject(), resource)
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return refused
		}
		return err
	}
	m, ok := resp.(proto.Message)
	if !ok {
		return refused
	}
	subject := p.GetSubject()
	for _, path := range rule.OwnerIn {
		for _, v := range fieldValues(m.ProtoReflect(), path) {
			if v == subject || strings.HasPrefix(v, subject+"/") {
				return nil
			}
		}
	}
	return refused
}

// fieldValues are the strings at a dotted path of m whose last field is a
// string or a repeated string (none when a message on the way is unset).
func fieldValues(m protoreflect.Message, path string) []string {
	parts := strings.Split(path, ".")
	for i, part := range parts {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(part))
		if fd == nil || fd.IsMap() {
			return nil
		}
		if i == len(parts)-1 {
			if fd.Kind() != protoreflect.StringKind {
				return nil
			}
			if !fd.IsList() {
				return []string{m.Get(fd).String()}
			}
			l := m.Get(fd).List()
			out := make([]string, l.Len())
			for j := range l.Len() {
				out[j] = l.Get(j).String()
			}
			return out
		}
		if fd.IsList() || fd.Kind() != protoreflect.MessageKind || !m.Has(fd) {
			return nil
		}
		m = m.Get(fd).Message()
	}
	return nil
}

func own(p *Principal, method string, req protoreflect.Message, path string) error {
	subject := p.GetSubject()
	collection := BoundCollection(p.GetRole())
	if subject == "" || !strings.HasPrefix(subject, collection+"/") {
		return status.Errorf(codes.PermissionDenied, "%s (%s) is bound to no %s and may not call %s", p.GetId(), p.GetRole(), collection, method)
	}
	name := fieldValue(req, path)
	wild := collection + "/-"
	if name == wild || strings.HasPrefix(name, wild+"/") {
		name = subject + strings.TrimPrefix(name, wild)
		setField(req, path, name)
	}
	if name == subject || strings.HasPrefix(name, subject+"/") {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "%s may act only within %s; %q is outside it", String(p), subject, name)
}

// fieldValue is the string at a dotted path of m ("" when a message on
// the way is unset or the path names no string field).
func fieldValue(m protoreflect.Message, path string) string {
	fd, owner := walk(m, path, false)
	if fd == nil {
		return ""
	}
	return owner.Get(fd).String()
}

func setField(m protoreflect.Message, path, v string) {
	if fd, owner := walk(m, path, true); fd != nil {
		owner.Set(fd, protoreflect.ValueOfString(v))
	}
}

func walk(m protoreflect.Message, path string, mutable bool) (protoreflect.FieldDescriptor, protoreflect.Message) {
	parts := strings.Split(path, ".")
	for i, part := range parts {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(part))
		if fd == nil || fd.IsList() || fd.IsMap() {
			return nil, nil
		}
		if i == len(parts)-1 {
			if fd.Kind() != protoreflect.StringKind {
				return nil, nil
			}
			return fd, m
		}
		if fd.Kind() != protoreflect.MessageKind {
			return nil, nil
		}
		if !m.Has(fd) && !mutable {
			return nil, nil
		}
		if mutable {
			m = m.Mutable(fd).Message()
		} else {
			m = m.Get(fd).Message()
		}
	}
	return nil, nil
}

// coverage lists what is wrong between the policies and the services a
// server has registered: methods without a rule, rules without a method,
// services without a policy.
func coverage(policies map[string]*Policy, services map[string]grpc.ServiceInfo) []string {
	var problems []string
	for svc, info := range services {
		if slices.Contains(publicServices, svc) {
			continue
		}
		p := policies[svc]
		if p == nil {
			problems = append(problems, svc+": no policy")
			continue
		}
		have := map[string]bool{}
		for _, m := range info.Methods {
			have[m.Name] = true
			if _, ok := p.Rules[m.Name]; !ok {
				problems = append(problems, fmt.Sprintf("%s/%s: no rule in the policy", svc, m.Name))
			}
		}
		for name := range p.Rules {
			if !have[name] {
				problems = append(problems, fmt.Sprintf("%s/%s: a rule for a method the service does not have", svc, name))
			}
		}
	}
	sort.Strings(problems)
	return problems
}
