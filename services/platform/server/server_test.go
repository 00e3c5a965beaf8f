package server_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// testService is a hand-written service: Block waits until released, Panic
// panics with a value that must never reach the caller.
type testService struct {
	started chan struct{} // one value per Block call that has begun
	release chan struct{} // closed to let Block calls return
}

func newTestService() *testService {
	return &testService{started: make(chan struct{}, 16), release: make(chan struct{})}
}

const (
	secret          = "secret-panic-value-7f3a"
	testServiceName = "kompetensnav.test.v1.TestService"
)

var testServiceDesc = grpc.ServiceDesc{
	ServiceName: testServiceName,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Block", Handler: unary("Block", func(s *testService, ctx context.Context) error {
			s.started <- struct{}{}
			select {
			case <-s.release:
				return nil
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			}
		})},
		{MethodName: "Panic", Handler: unary("Panic", func(*testService, context.Context) error {
			panic(errors.New(secret))
		})},
	},
}

func unary(method string, f func(*testService, context.Context) error) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(emptypb.Empty)
		if err := dec(in); err != nil {
			return nil, err
		}
		handler := func(ctx context.Context, _ any) (any, error) {
			if err := f(srv.(*testService), ctx); err != nil {
				return nil, err
			}
			return &emptypb.Empty{}, nil
		}
		if interceptor == nil {
			return handler(ctx, in)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + testServiceName + "/" + method}
		return interceptor(ctx, in, info, handler)
	}
}

func call(ctx context.Context, conn *grpc.ClientConn, method string) error {
	return conn.Invoke(ctx, "/"+testServiceName+"/"+method, &emptypb.Empty{}, &emptypb.Empty{})
}

// syncBuffer is a log destination tests can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// served is a platform server on a loopback port, for tests that need the
// server itself (testkit.Serve hides it) or its log.
type served struct {
	srv  *server.Server
	lis  net.Listener
	conn *grpc.ClientConn
	log  *syncBuffer
	done chan error // Serve's result
}

func serve(t *testing.T, register func(*grpc.Server)) *served {
	t.Helper()
	s := &served{log: &syncBuffer{}, done: make(chan error, 1)}
	var err error
	s.srv, err = server.New(slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	register(s.srv.GRPC)
	if s.lis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.srv.Serve(s.lis) }()
	s.conn = dial(t, s.lis.Addr().String())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.srv.Shutdown(ctx) // a no-op if the test shut it down already
	})
	return s
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitClosed waits until the listener refuses connections: GracefulStop
// closes it first thing, so then Shutdown is under way.
func waitClosed(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting 5s after Shutdown began")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestShutdownLetsCallsInFlightFinish(t *testing.T) {
	svc := newTestService()
	s := serve(t, func(g *grpc.Server) { g.RegisterService(&testServiceDesc, svc) })
	ctx := ctxFor(t)

	result := make(chan error, 1)
	go func() { result <- call(ctx, s.conn, "Block") }()
	<-svc.started

	shutdown := make(chan struct{})
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.srv.Shutdown(sctx)
		close(shutdown)
	}()
	waitClosed(t, s.lis.Addr().String())
	select {
	case <-shutdown:
		t.Fatal("Shutdown returned while a call was still in flight")
	case err := <-result:
		t.Fatalf("the call in flight ended before it was released: %v", err)
	default:
	}

	close(svc.release)
	if err := <-result; err != nil {
		t.Fatalf("call in flight during shutdown: %v, want OK", err)
	}
	<-shutdown
	if err := <-s.done; err != nil {
		t.Fatalf("Serve after Shutdown: %v, want nil", err)
	}
	if strings.Contains(s.log.String(), "shutdown deadline passed") {
		t.Fatalf("shutdown cancelled calls instead of draining them:\n%s", s.log)
	}

	// Gone: new calls fail, on the old connection and on a new one.
	if err := call(ctx, s.conn, "Block"); status.Code(err) != codes.Unavailable {
		t.Fatalf("call after Shutdown: %v, want UNAVAILABLE", err)
	}
	_, err := healthpb.NewHealthClient(dial(t, s.lis.Addr().String())).Check(ctx, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("health check after Shutdown: %v, want UNAVAILABLE", err)
	}
}

// A client watching health (client-side health checking, a proxy) must
// learn NOT_SERVING as soon as shutdown starts, and its open Watch stream
// must not hold the shutdown up until the grace period runs out.
func TestShutdownTellsHealthWatchersAndEndsTheirStreams(t *testing.T) {
	svc := newTestService()
	s := serve(t, func(g *grpc.Server) { g.RegisterService(&testServiceDesc, svc) })
	ctx := ctxFor(t)

	watch, err := healthpb.NewHealthClient(s.conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first health status %v (%v), want SERVING", r.GetStatus(), err)
	}
	result := make(chan error, 1)
	go func() { result <- call(ctx, s.conn, "Block") }()
	<-svc.started

	shutdown := make(chan struct{})
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s.srv.Shutdown(sctx)
		close(shutdown)
	}()
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health status after Shutdown began: %v (%v), want NOT_SERVING", r.GetStatus(), err)
	}
	close(svc.release)
	if err := <-result; err != nil {
		t.Fatalf("call in flight during shutdown: %v, want OK", err)
	}
	<-shutdown
	if strings.Contains(s.log.String(), "shutdown deadline passed") {
		t.Fatal("the health Watch stream held Shutdown until its deadline")
	}
	if _, err := watch.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("Watch stream after Shutdown: %v, want it ended with UNAVAILABLE", err)
	}
}

func TestShutdownDeadlineCancelsCallsStillRunning(t *testing.T) {
	svc := newTestService()
	s := serve(t, func(g *grpc.Server) { g.RegisterService(&testServiceDesc, svc) })
	ctx := ctxFor(t)
	result := make(chan error, 1)
	go func() { result <- call(ctx, s.conn, "Block") }()
	<-svc.started

	sctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s.srv.Shutdown(sctx) // the call is never released
	if err := <-result; err == nil {
		t.Fatal("a call still running at the deadline succeeded")
	}
	if !strings.Contains(s.log.String(), "shutdown deadline passed") {
		t.Errorf("no warning about the cancelled calls in the log:\n%s", s.log)
	}
}

func TestRunShutsDownAndCleansUpInOrder(t *testing.T) {
	t.Run("context already cancelled", func(t *testing.T) {
		srv, err := server.New(testkit.Logger())
		if err != nil {
			t.Fatal(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var order []string
		err = srv.Run(ctx, lis, time.Second,
			func() { order = append(order, "redis") },
			func() { order = append(order, "traces") },
			func() { order = append(order, "last") })
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if want := []string{"redis", "traces", "last"}; !slices.Equal(order, want) {
			t.Fatalf("cleanups ran as %v, want %v", order, want)
		}
		if c, err := net.DialTimeout("tcp", lis.Addr().String(), time.Second); err == nil {
			_ = c.Close()
			t.Fatal("listener still open after Run returned")
		}
	})

	t.Run("cancelled while serving", func(t *testing.T) {
		srv, err := server.New(testkit.Logger())
		if err != nil {
			t.Fatal(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var cleaned atomic.Int32
		ran := make(chan error, 1)
		go func() {
			ran <- srv.Run(ctx, lis, 5*time.Second, func() { cleaned.Add(1) }, func() { cleaned.Add(10) })
		}()
		hc := healthpb.NewHealthClient(dial(t, lis.Addr().String()))
		if r, err := hc.Check(ctxFor(t), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health while running: %v (%v)", r.GetStatus(), err)
		}
		if cleaned.Load() != 0 {
			t.Fatal("cleanups ran while serving")
		}
		cancel()
		if err := <-ran; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if cleaned.Load() != 11 {
			t.Fatalf("cleanups: %d, want both (11)", cleaned.Load())
		}
	})

	t.Run("serve fails", func(t *testing.T) {
		srv, err := server.New(testkit.Logger())
		if err != nil {
			t.Fatal(err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_ = lis.Close()
		cleaned := false
		if err := srv.Run(context.Background(), lis, time.Second, func() { cleaned = true }); err == nil {
			t.Fatal("Run on a closed listener returned nil")
		}
		if !cleaned {
			t.Fatal("cleanups skipped when Serve failed")
		}
	})
}

// councils records whether its handler ran.
type councils struct {
	councilsv1.UnimplementedCouncilsServiceServer
	called atomic.Bool
}

func (c *councils) GetCouncil(_ context.Context, req *councilsv1.GetCouncilRequest) (*councilsv1.SectorCouncil, error) {
	c.called.Store(true)
	return &councilsv1.SectorCouncil{Name: req.GetName()}, nil
}

func TestHealthIsServingForEveryService(t *testing.T) {
	conn := testkit.Serve(t, func(g *grpc.Server) { councilsv1.RegisterCouncilsServiceServer(g, &councils{}) })
	hc := healthpb.NewHealthClient(conn)
	ctx := ctxFor(t)
	for _, svc := range []string{"", councilsv1.CouncilsService_ServiceDesc.ServiceName} {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v (%v), want SERVING", svc, r.GetStatus(), err)
		}
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "kompetensnav.nope.v1.NopeService"}); status.Code(err) != codes.NotFound {
		t.Errorf("Check(unregistered service) = %v, want NOT_FOUND", err)
	}
}

func TestReflectionListsServices(t *testing.T) {
	conn := testkit.Serve(t, func(g *grpc.Server) { councilsv1.RegisterCouncilsServiceServer(g, &councils{}) })
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	resp := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	var listed []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		listed = append(listed, s.GetName())
	}
	for _, want := range []string{"kompetensnav.councils.v1.CouncilsService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(listed, want) {
			t.Errorf("reflection lists %v, missing %s", listed, want)
		}
	}

	// The descriptors are there too, so grpcurl can call methods.
	resp = ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "kompetensnav.councils.v1.CouncilsService"}})
	if len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Errorf("no file descriptor for the councils service: %v", resp.GetErrorResponse())
	}
	_ = stream.CloseSend()
}

func TestInvalidRequestIsRejectedBeforeTheHandler(t *testing.T) {
	impl := &councils{}
	client := councilsv1.NewCouncilsServiceClient(testkit.Serve(t, func(g *grpc.Server) { councilsv1.RegisterCouncilsServiceServer(g, impl) }))
	ctx := ctxFor(t)

	_, err := client.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: "bad name"})
	msg := testkit.WantBadRequest(t, err, "name")
	if !strings.Contains(msg, "name") {
		t.Errorf("message %q does not name the field", msg)
	}
	if impl.called.Load() {
		t.Fatal("the handler ran for an invalid request")
	}

	// A valid request gets through, so the check above could have failed.
	if _, err := client.GetCouncil(ctx, &councilsv1.GetCouncilRequest{Name: "councils/fordon"}); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	if !impl.called.Load() {
		t.Fatal("the handler did not run for a valid request")
	}
}

func TestPanicIsInternalErrorAndRevealsNothing(t *testing.T) {
	s := serve(t, func(g *grpc.Server) { g.RegisterService(&testServiceDesc, newTestService()) })
	ctx := ctxFor(t)

	err := call(ctx, s.conn, "Panic")
	st := status.Convert(err)
	if st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("panic returned %v, want INTERNAL \"internal error\"", err)
	}
	if len(st.Details()) != 0 {
		t.Errorf("panic returned details %v", st.Details())
	}
	for _, leak := range []string{secret, "goroutine", "server_test.go", "panic"} {
		if strings.Contains(st.Proto().String(), leak) {
			t.Errorf("the caller sees %q: %v", leak, st.Proto())
		}
	}
	// The operator does see it, in the log.
	if log := s.log.String(); !strings.Contains(log, secret) || !strings.Contains(log, "server_test.go") {
		t.Errorf("the log lacks the panic value or stack:\n%s", log)
	}
	// And the server lives on.
	if _, err := healthpb.NewHealthClient(s.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("server after a panic: %v", err)
	}
}

func TestRequestIDIsLogged(t *testing.T) {
	s := serve(t, func(g *grpc.Server) { g.RegisterService(&testServiceDesc, newTestService()) })
	ctx := metadata.AppendToOutgoingContext(ctxFor(t), server.RequestIDHeader, "req-4711")
	_ = call(ctx, s.conn, "Panic")
	var line string
	for _, l := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(l, "finished call") {
			line = l
		}
	}
	if !strings.Contains(line, "request_id=req-4711") {
		t.Fatalf("call log line %q lacks the request id; log:\n%s", line, s.log)
	}
}

func TestReflectionCanBeSwitchedOff(t *testing.T) {
	conn := testkit.Serve(t, func(g *grpc.Server) { councilsv1.RegisterCouncilsServiceServer(g, &councils{}) },
		testkit.ServerOptions(server.Reflection(false)))
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctxFor(t))
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("reflection with Reflection(false): %v, want UNIMPLEMENTED", err)
	}
}

// A request over the size limit is refused by the transport, before any
// handler; the limit is a flag.
func TestRequestsOverTheSizeLimitAreRefused(t *testing.T) {
	impl := &councils{}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	sf := server.RegisterFlags(fs, false)
	if err := fs.Parse([]string{"-grpc-max-recv-bytes", "1024"}); err != nil {
		t.Fatal(err)
	}
	opts, err := sf.Options()
	if err != nil {
		t.Fatal(err)
	}
	client := councilsv1.NewCouncilsServiceClient(testkit.Serve(t,
		func(g *grpc.Server) { councilsv1.RegisterCouncilsServiceServer(g, impl) }, testkit.ServerOptions(opts...)))
	big := strings.Repeat("a", 2048)
	_, err = client.CreateCouncil(ctxFor(t), &councilsv1.CreateCouncilRequest{Council: &councilsv1.SectorCouncil{DisplayName: big}})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a 2 kB request against a 1 kB limit: %v", err)
	}
	if impl.called.Load() {
		t.Fatal("the handler ran")
	}
	if err := fs.Parse([]string{"-grpc-max-recv-bytes", "0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sf.Options(); err == nil {
		t.Fatal("a zero limit was accepted")
	}
}
