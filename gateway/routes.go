package gateway

import (
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// route is what the gateway knows of one HTTP binding, read from the
// google.api.http options of the services' descriptors: the request
// message, which of its fields the path binds and which the body carries.
// grpc-gateway's generated handlers know it too, but keep it to
// themselves; the gateway needs it to check a request before it is
// decoded (strict.go) and to name fields in errors.
type route struct {
	method string // the RPC, e.g. kompetensnav.councils.v1.CouncilsService.CreateNeed
	input  protoreflect.MessageDescriptor
	// body is "" (no body), "*" (the whole request) or a field of input.
	body string
	// bodyMsg is the message the body decodes into.
	bodyMsg protoreflect.MessageDescriptor
	// path are the request fields the URL path binds, as dotted proto paths.
	path map[string]bool
}

// routes maps "<HTTP method> <path template>" to its route, for every
// binding of every service in services (full gRPC service names).
func routes(services []string) (map[string]*route, error) {
	out := map[string]*route{}
	for _, name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			return nil, fmt.Errorf("gateway: service %s is not linked in: %w", name, err)
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, fmt.Errorf("gateway: %s is not a service", name)
		}
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
			if rule == nil {
				continue
			}
			for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
				verb, tmpl := httpPattern(r)
				if verb == "" {
					continue
				}
				rt, err := newRoute(md, tmpl, r.GetBody())
				if err != nil {
					return nil, err
				}
				out[verb+" "+normalizeTemplate(tmpl)] = rt
			}
		}
	}
	return out, nil
}

func httpPattern(r *annotations.HttpRule) (verb, tmpl string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "GET", p.Get
	case *annotations.HttpRule_Post:
		return "POST", p.Post
	case *annotations.HttpRule_Put:
		return "PUT", p.Put
	case *annotations.HttpRule_Patch:
		return "PATCH", p.Patch
	case *annotations.HttpRule_Delete:
		return "DELETE", p.Delete
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

var pathVar = regexp.MustCompile(`\{([^=}]+)(=[^}]*)?\}`)

// normalizeTemplate spells a template as grpc-gateway's Pattern.String
// does: "{name}" is "{name=*}".
func normalizeTemplate(t string) string {
	return pathVar.ReplaceAllStringFunc(t, func(v string) string {
		if strings.Contains(v, "=") {
			return v
		}
		return strings.TrimSuffix(v, "}") + "=*}"
	})
}

func newRoute(md protoreflect.MethodDescriptor, tmpl, body string) (*route, error) {
	rt := &route{method: string(md.FullName()), input: md.Input(), body: body, path: map[string]bool{}}
	for _, m := range pathVar.FindAllStringSubmatch(tmpl, -1) {
		rt.path[m[1]] = true
	}
	switch body {
	case "":
	case "*":
		rt.bodyMsg = md.Input()
	default:
		fd := md.Input().Fields().ByName(protoreflect.Name(body))
		if fd == nil || fd.Message() == nil {
			return nil, fmt.Errorf("gateway: %s: body %q is not a message field", md.FullName(), body)
		}
		rt.bodyMsg = fd.Message()
	}
	return rt, nil
}

// jsonName is the lowerCamel JSON name of a proto field name, as protojson
// writes it.
func jsonName(name string) string {
	var b strings.Builder
	up := false
	for _, r := range name {
		switch {
		case r == '_':
			up = true
		case up && 'a' <= r && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
			up = false
		default:
			b.WriteRune(r)
			up = false
		}
	}
	return b.String()
}

// jsonPath turns a proto field path ("need.target_groups[2]") into the JSON
// path a REST client knows ("need.targetGroups[2]").
func jsonPath(p string) string {
	parts := strings.Split(p, ".")
	for i, part := range parts {
		name, rest, _ := strings.Cut(part, "[")
		if rest != "" {
			rest = "[" + rest
		}
		parts[i] = jsonName(name) + rest
	}
	return strings.Join(parts, ".")
}
