package auth_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/audit"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// people is a test schema with personal data, built here because no
// service has any yet: a Person with two sensitive fields, and a Group
// holding people in a list, a map and a nested field.
var people = func() protoreflect.FileDescriptor {
	sensitive := func() *descriptorpb.FieldOptions {
		o := &descriptorpb.FieldOptions{}
		proto.SetExtension(o, commonv1.E_Sensitive, true)
		return o
	}
	str := func(name string, n int32, opts *descriptorpb.FieldOptions) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), JsonName: proto.String(name),
			Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Options: opts}
	}
	msg := func(name string, n int32, typ string, label descriptorpb.FieldDescriptorProto_Label) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), JsonName: proto.String(name),
			Type: descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(), TypeName: proto.String(typ), Label: label.Enum()}
	}
	f, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("kompetensnav/test/v1/people.proto"), Package: proto.String("kompetensnav.test.v1"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Person"), Field: []*descriptorpb.FieldDescriptorProto{
				str("name", 1, nil), str("personnummer", 2, sensitive()), str("email", 3, sensitive()), str("municipality", 4, nil)}},
			{Name: proto.String("Group"), Field: []*descriptorpb.FieldDescriptorProto{
				str("name", 1, nil),
				msg("people", 2, ".kompetensnav.test.v1.Person", descriptorpb.FieldDescriptorProto_LABEL_REPEATED),
				msg("lead", 3, ".kompetensnav.test.v1.Person", descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL),
				msg("by_id", 4, ".kompetensnav.test.v1.Group.ByIdEntry", descriptorpb.FieldDescriptorProto_LABEL_REPEATED)},
				NestedType: []*descriptorpb.DescriptorProto{{Name: proto.String("ByIdEntry"),
					Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
					Field: []*descriptorpb.FieldDescriptorProto{str("key", 1, nil),
						msg("value", 2, ".kompetensnav.test.v1.Person", descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL)}}}},
			{Name: proto.String("GetGroupRequest"), Field: []*descriptorpb.FieldDescriptorProto{str("name", 1, nil)}},
		},
	}, nil)
	if err != nil {
		panic(err)
	}
	return f
}()

func msgType(name string) protoreflect.MessageDescriptor {
	return people.Messages().ByName(protoreflect.Name(name))
}

func person(name, pnr, email, municipality string) *dynamicpb.Message {
	p := dynamicpb.NewMessage(msgType("Person"))
	f := p.Descriptor().Fields()
	for field, v := range map[string]string{"name": name, "personnummer": pnr, "email": email, "municipality": municipality} {
		if v != "" {
			p.Set(f.ByName(protoreflect.Name(field)), protoreflect.ValueOfString(v))
		}
	}
	return p
}

// group is a Group with personal data at every depth: in a list, a map
// value and a nested field.
func group() *dynamicpb.Message {
	g := dynamicpb.NewMessage(msgType("Group"))
	f := g.Descriptor().Fields()
	g.Set(f.ByName("name"), protoreflect.ValueOfString("councils/fordon"))
	l := g.Mutable(f.ByName("people")).List()
	l.Append(protoreflect.ValueOfMessage(person("people/a", "19800101-1234", "a@example.org", "1480")))
	l.Append(protoreflect.ValueOfMessage(person("people/b", "19900202-2345", "", "1440")))
	g.Set(f.ByName("lead"), protoreflect.ValueOfMessage(person("people/c", "19700303-3456", "c@example.org", "1401")))
	g.Mutable(f.ByName("by_id")).Map().Set(protoreflect.ValueOfString("d").MapKey(),
		protoreflect.ValueOfMessage(person("people/d", "19600404-4567", "", "1384")))
	return g
}

func TestRedactClearsSensitiveFieldsAtAnyDepth(t *testing.T) {
	g := group()
	if n := auth.Sensitive(g); n != 6 {
		t.Fatalf("Sensitive = %d, want 6 (4 personnummer, 2 e-mail)", n)
	}
	if n := auth.Redact(g); n != 6 {
		t.Fatalf("Redact cleared %d, want 6", n)
	}
	if auth.Sensitive(g) != 0 {
		t.Fatal("something sensitive is left")
	}
	text := g.String()
	for _, gone := range []string{"1234", "2345", "3456", "4567", "example.org"} {
		if strings.Contains(text, gone) {
			t.Fatalf("%q is still in %s", gone, text)
		}
	}
	for _, kept := range []string{"people/a", "people/d", "1480", "1384", "councils/fordon"} {
		if !strings.Contains(text, kept) {
			t.Fatalf("%q was cleared too: %s", kept, text)
		}
	}
	// Services' messages without any sensitive field cost nothing.
	if auth.HasSensitive((&councilsv1.ListNeedsResponse{}).ProtoReflect().Descriptor()) {
		t.Fatal("councils responses have no sensitive field")
	}
}

// peopleService serves GetGroup (its one shared Group, to prove the guard
// redacts a copy) and Unlisted, which no policy rule lists.
type peopleService struct{ shared *dynamicpb.Message }

var peopleDesc = grpc.ServiceDesc{
	ServiceName: "kompetensnav.test.v1.PeopleService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "GetGroup", Handler: peopleHandler("GetGroup")},
		{MethodName: "Unlisted", Handler: peopleHandler("Unlisted")},
		{MethodName: "GetOwned", Handler: peopleHandler("GetOwned")},
	},
}

func peopleHandler(method string) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := dynamicpb.NewMessage(msgType("GetGroupRequest"))
		if err := dec(in); err != nil {
			return nil, err
		}
		h := func(context.Context, any) (any, error) { return srv.(*peopleService).shared, nil }
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/kompetensnav.test.v1.PeopleService/" + method}, h)
	}
}

var peoplePolicy = &auth.Policy{
	Service:  "kompetensnav.test.v1.PeopleService",
	Keyspace: store.Keyspace("people"),
	Rules: map[string]auth.Rule{
		"GetGroup": {Resource: "name", Roles: auth.Only(auth.Staff, auth.Partner, auth.Provider).With(auth.Council, auth.Own),
			SensitiveTo: []auth.Role{auth.Provider}},
		// A group whose owner is not in its name: the provider it is kept
		// for, looked up in the service's Redis.
		"GetOwned": {Resource: "name", Roles: auth.Only(auth.Staff).With(auth.Provider, auth.Own),
			OwnerOf: func(ctx context.Context, rdb redis.UniversalClient, name string) (string, error) {
				owner, err := rdb.HGet(ctx, "kn:{people}:owner:"+name, "provider").Result()
				if errors.Is(err, redis.Nil) {
					return "", status.Error(codes.NotFound, name)
				}
				return owner, err
			}},
	},
}

func servePeople(t *testing.T, rdb redis.UniversalClient) *grpc.ClientConn {
	t.Helper()
	guard := auth.NewGuard(auth.Chain(testTokens), testkit.Logger())
	guard.Protect(peoplePolicy, rdb)
	srv, err := server.New(testkit.Logger(), server.WithGuard(guard))
	if err != nil {
		t.Fatal(err)
	}
	srv.GRPC.RegisterService(&peopleDesc, &peopleService{shared: group()})
	err = guard.Covers(srv.GRPC.GetServiceInfo())
	if err == nil || !strings.Contains(err.Error(), "PeopleService/Unlisted: no rule") {
		t.Fatalf("Covers: %v, want it to name the unlisted method", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// testTokens accepts "role:ROLE_NAME[:subject]" (testkit's own tokens are
// unexported; this test builds its server by hand to serve an uncovered
// method).
var testTokens = auth.AuthenticatorFunc(func(_ context.Context, token string) (*auth.Principal, error) {
	rest, ok := strings.CutPrefix(token, "role.")
	if !ok {
		return nil, auth.ErrNotMine
	}
	role, subject, _ := strings.Cut(rest, ".")
	return &auth.Principal{Id: "t/" + role, Role: auth.Role(accessv1.Role_value[role]), Subject: subject}, nil
})

func as(role auth.Role, subject string) context.Context {
	tok := "role." + role.String()
	if subject != "" {
		tok += "." + subject
	}
	return testkit.As(context.Background(), tok)
}

func peopleRecords(t *testing.T, rdb redis.UniversalClient) []*accessv1.AuditRecord {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), "kn:{people}:audit", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []*accessv1.AuditRecord
	for _, m := range msgs {
		r := &accessv1.AuditRecord{}
		raw, _ := m.Values[audit.Field].(string)
		if err := proto.Unmarshal([]byte(raw), r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestGuardMasksRecordsAndDeniesByDefault(t *testing.T) {
	rdb := testkit.Embedded(t)
	conn := servePeople(t, rdb)
	get := func(ctx context.Context, method, name string) (*dynamicpb.Message, error) {
		req := dynamicpb.NewMessage(msgType("GetGroupRequest"))
		req.Set(req.Descriptor().Fields().ByName("name"), protoreflect.ValueOfString(name))
		out := dynamicpb.NewMessage(msgType("Group"))
		return out, conn.Invoke(ctx, "/kompetensnav.test.v1.PeopleService/"+method, req, out)
	}
	count := func() int { return len(peopleRecords(t, rdb)) }

	// A role not allowed to see personal data gets it cleared, everywhere,
	// and leaves no record of a read it did not make.
	g, err := get(as(auth.Partner, ""), "GetGroup", "councils/fordon")
	if err != nil {
		t.Fatal(err)
	}
	if auth.Sensitive(g) != 0 || !strings.Contains(g.String(), "1480") {
		t.Fatalf("partner sees %v", g)
	}
	if count() != 0 {
		t.Fatal("a redacted read was recorded")
	}
	// Staff sees all of it (the shared message was not redacted in place),
	// and that is recorded; so does a role the rule lets see it.
	for _, p := range []struct {
		role auth.Role
	}{{auth.Staff}, {auth.Provider}} {
		before := count()
		g, err = get(as(p.role, "providers/lernia"), "GetGroup", "councils/fordon")
		if err != nil || auth.Sensitive(g) != 6 {
			t.Fatalf("%s: %v (%v)", p.role, g, err)
		}
		recs := peopleRecords(t, rdb)[before:]
		if len(recs) != 1 || recs[0].GetKind() != accessv1.AuditRecord_KIND_SENSITIVE_READ || recs[0].GetRole() != p.role ||
			recs[0].GetResource() != "councils/fordon" || recs[0].GetService() != "people" {
			t.Fatalf("%s: records %v", p.role, recs)
		}
		if strings.Contains(recs[0].String(), "19800101") {
			t.Fatal("the record holds the data")
		}
	}
	// Own scope: a council within its own, not another's.
	if _, err := get(as(auth.Council, "councils/fordon"), "GetGroup", "councils/fordon"); err != nil {
		t.Fatal(err)
	}
	before := count()
	_, err = get(as(auth.Council, "councils/fordon"), "GetGroup", "councils/handel")
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("another council's: %v", err)
	}
	// Not in the rule; not in the policy at all: refused and recorded.
	_, err = get(as(auth.Auditor, ""), "GetGroup", "councils/fordon")
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("auditor: %v", err)
	}
	_, err = get(as(auth.Staff, ""), "Unlisted", "councils/fordon")
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a method without a rule: %v", err)
	}
	recs := peopleRecords(t, rdb)[before:]
	if len(recs) != 3 {
		t.Fatalf("%d denial records, want 3: %v", len(recs), recs)
	}
	for _, r := range recs {
		if r.GetKind() != accessv1.AuditRecord_KIND_DENIAL || r.GetOutcome() != "PERMISSION_DENIED" {
			t.Fatalf("record %v", r)
		}
	}

	// No credentials: UNAUTHENTICATED, and nothing recorded (there is no one
	// to record); health answers anyway.
	_, err = get(context.Background(), "GetGroup", "councils/fordon")
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no credentials: %v", err)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health without credentials: %v", err)
	}
}

// Own through OwnerOf: a provider reaches a resource that belongs to it by a
// lookup, not by its name; another's, or one that does not exist, is the
// same PERMISSION_DENIED, recorded.
func TestGuardOwnByOwnerOf(t *testing.T) {
	rdb := testkit.Embedded(t)
	conn := servePeople(t, rdb)
	ctx := context.Background()
	rdb.HSet(ctx, "kn:{people}:owner:groups/a", "provider", "providers/lernia")
	rdb.HSet(ctx, "kn:{people}:owner:groups/b", "provider", "providers/folkuniversitetet")
	get := func(ctx context.Context, name string) error {
		req := dynamicpb.NewMessage(msgType("GetGroupRequest"))
		req.Set(req.Descriptor().Fields().ByName("name"), protoreflect.ValueOfString(name))
		return conn.Invoke(ctx, "/kompetensnav.test.v1.PeopleService/GetOwned", req, dynamicpb.NewMessage(msgType("Group")))
	}
	lernia := as(auth.Provider, "providers/lernia")
	if err := get(lernia, "groups/a"); err != nil {
		t.Fatalf("own: %v", err)
	}
	before := len(peopleRecords(t, rdb))
	for _, name := range []string{"groups/b", "groups/none", ""} {
		err := get(lernia, name)
		if status.Code(err) != codes.PermissionDenied || strings.Contains(status.Convert(err).Message(), "folkuniversitetet") {
			t.Fatalf("%q: %v", name, err)
		}
	}
	if got := len(peopleRecords(t, rdb)) - before; got != 3 {
		t.Fatalf("%d denial records, want 3", got)
	}
	if err := get(as(auth.Staff, ""), "groups/b"); err != nil {
		t.Fatalf("staff: %v", err)
	}
	if err := get(as(auth.Provider, ""), "groups/a"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("an unbound provider: %v", err)
	}
}
