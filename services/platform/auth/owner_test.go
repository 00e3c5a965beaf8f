package auth_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	accessv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/access/v1"
	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/auth"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/kompetensnav/kompetensnav/services/platform/store"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// The needs test service stands in for a resource that is not under its
// owner's name: a need raised by a company (requested_by), which the
// company may read and edit although the need lives under a council.
// Get answers the stored need, NOT_FOUND for any other name; Update
// records what reached it.
type needsService struct {
	need    *councilsv1.CompetenceNeed
	updates int
}

func (n *needsService) get(_ context.Context, req *councilsv1.GetNeedRequest) (*councilsv1.CompetenceNeed, error) {
	if req.GetName() != n.need.GetName() {
		return nil, apierr.NotFound(req.GetName())
	}
	return n.need, nil
}

func (n *needsService) update(_ context.Context, req *councilsv1.UpdateNeedRequest) (*councilsv1.CompetenceNeed, error) {
	n.updates++
	return req.GetNeed(), nil
}

func unary[Req, Resp proto.Message](method string, newReq func() Req, h func(*needsService, context.Context, Req) (Resp, error)) grpc.MethodDesc {
	return grpc.MethodDesc{MethodName: method, Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := newReq()
		if err := dec(in); err != nil {
			return nil, err
		}
		call := func(ctx context.Context, req any) (any, error) { return h(srv.(*needsService), ctx, req.(Req)) }
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/kompetensnav.test.v1.NeedsService/" + method}, call)
	}}
}

var needsDesc = grpc.ServiceDesc{
	ServiceName: "kompetensnav.test.v1.NeedsService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		unary("Get", func() *councilsv1.GetNeedRequest { return &councilsv1.GetNeedRequest{} }, (*needsService).get),
		unary("Update", func() *councilsv1.UpdateNeedRequest { return &councilsv1.UpdateNeedRequest{} }, (*needsService).update),
	},
}

var ownCompany = auth.Only(auth.Staff).With(auth.Company, auth.Own)

var needsPolicy = &auth.Policy{
	Service:  "kompetensnav.test.v1.NeedsService",
	Keyspace: store.Keyspace("needs"),
	Rules: map[string]auth.Rule{
		"Get":    {Resource: "name", OwnerIn: []string{"requested_by", "skills"}, Roles: ownCompany},
		"Update": {Write: true, Resource: "need.name", Owner: "need.requested_by", Roles: ownCompany},
	},
}

func serveNeeds(t *testing.T, rdb redis.UniversalClient, svc *needsService) *grpc.ClientConn {
	t.Helper()
	guard := auth.NewGuard(auth.Chain(testTokens), testkit.Logger())
	guard.Protect(needsPolicy, rdb)
	srv, err := server.New(testkit.Logger(), server.WithGuard(guard))
	if err != nil {
		t.Fatal(err)
	}
	srv.GRPC.RegisterService(&needsDesc, svc)
	if err := guard.Covers(srv.GRPC.GetServiceInfo()); err != nil {
		t.Fatal(err)
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

func needsRecords(t *testing.T, rdb redis.UniversalClient) []*accessv1.AuditRecord {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), "kn:{needs}:audit", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return make([]*accessv1.AuditRecord, len(msgs))
}

func TestOwnerFieldsScopeWhatIsNotUnderTheOwnersName(t *testing.T) {
	rdb := testkit.Embedded(t)
	svc := &needsService{need: &councilsv1.CompetenceNeed{Name: "councils/fordon/needs/svets", RequestedBy: "companies/volvo",
		Skills: []string{"skills/svetsning"}}}
	conn := serveNeeds(t, rdb, svc)
	get := func(ctx context.Context, name string) (*councilsv1.CompetenceNeed, error) {
		out := &councilsv1.CompetenceNeed{}
		return out, conn.Invoke(ctx, "/kompetensnav.test.v1.NeedsService/Get", &councilsv1.GetNeedRequest{Name: name}, out)
	}
	update := func(ctx context.Context, by string) error {
		return conn.Invoke(ctx, "/kompetensnav.test.v1.NeedsService/Update",
			&councilsv1.UpdateNeedRequest{Need: &councilsv1.CompetenceNeed{Name: "councils/fordon/needs/svets", RequestedBy: by}},
			&councilsv1.CompetenceNeed{})
	}
	volvo, scania := as(auth.Company, "companies/volvo"), as(auth.Company, "companies/scania")

	// OwnerIn: the response decides. The company that raised the need reads
	// it although its name is a council's; another company is refused,
	// and a name that does not exist is refused the same way.
	if n, err := get(volvo, "councils/fordon/needs/svets"); err != nil || n.GetRequestedBy() != "companies/volvo" {
		t.Fatalf("owner reads: %v %v", n, err)
	}
	before := len(needsRecords(t, rdb))
	_, errOther := get(scania, "councils/fordon/needs/svets")
	_, errMissing := get(scania, "councils/fordon/needs/missing")
	for _, err := range []error{errOther, errMissing} {
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("another company: %v", err)
		}
	}
	if m1, m2 := status.Convert(errOther).Message(), status.Convert(errMissing).Message(); strings.Replace(m2, "missing", "svets", 1) != m1 {
		t.Fatalf("the answers tell existing from missing:\n%s\n%s", m1, m2)
	}
	if n := len(needsRecords(t, rdb)) - before; n != 2 {
		t.Fatalf("%d denial records, want 2", n)
	}
	// Staff (scope Any) gets NOT_FOUND as it is.
	if _, err := get(as(auth.Staff, ""), "councils/fordon/needs/missing"); status.Code(err) != codes.NotFound {
		t.Fatalf("staff, missing: %v", err)
	}
	// A repeated field names the owner too (a path of OwnerIn that matches
	// nothing is no error: any listed field may name it).
	svc.need = &councilsv1.CompetenceNeed{Name: "councils/fordon/needs/svets", Skills: []string{"x", "companies/scania/sites/torslanda"}}
	if _, err := get(scania, "councils/fordon/needs/svets"); err != nil {
		t.Fatalf("owner named in a list: %v", err)
	}
	// A company key bound to nothing is refused before the handler runs.
	if _, err := get(as(auth.Company, ""), "councils/fordon/needs/svets"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("unbound: %v", err)
	}

	// Owner: the request field decides, before the handler runs; the
	// wildcard is narrowed to the principal's own.
	if err := update(volvo, "companies/volvo"); err != nil {
		t.Fatalf("owner updates: %v", err)
	}
	for _, by := range []string{"companies/scania", ""} {
		if err := update(volvo, by); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("update naming %q: %v", by, err)
		}
	}
	if svc.updates != 1 {
		t.Fatalf("the handler ran %d times, want once", svc.updates)
	}
	out := &councilsv1.CompetenceNeed{}
	err := conn.Invoke(volvo, "/kompetensnav.test.v1.NeedsService/Update",
		&councilsv1.UpdateNeedRequest{Need: &councilsv1.CompetenceNeed{Name: "councils/fordon/needs/svets", RequestedBy: "companies/-"}}, out)
	if err != nil || out.GetRequestedBy() != "companies/volvo" {
		t.Fatalf("wildcard owner: %v %v", out, err)
	}
}

func TestOwnerInIsForReadsOnly(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(error).Error(), "OwnerIn") {
			t.Fatalf("Protect accepted OwnerIn on a write: %v", r)
		}
	}()
	auth.NewGuard(nil, testkit.Logger()).Protect(&auth.Policy{Service: "x", Keyspace: "x", Rules: map[string]auth.Rule{
		"Update": {Write: true, Resource: "name", OwnerIn: []string{"owner"}, Roles: ownCompany},
	}}, testkit.Embedded(t))
}
