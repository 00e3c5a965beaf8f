package peer_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"github.com/kompetensnav/kompetensnav/services/platform/peer"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// peerServer is the service being called: it records what each call
// brought and answers as told.
type peerServer struct {
	testgrpc.UnimplementedTestServiceServer
	mu        sync.Mutex
	calls     int
	md        metadata.MD
	remaining time.Duration // of the call's deadline on arrival; 0 for none
	failFirst int           // answer UNAVAILABLE to this many calls first
	answer    error         // then answer this
	block     bool          // or wait until the call's context ends
}

func (p *peerServer) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	p.mu.Lock()
	p.calls++
	p.md, _ = metadata.FromIncomingContext(ctx)
	p.remaining = 0
	if d, ok := ctx.Deadline(); ok {
		p.remaining = time.Until(d)
	}
	fail, answer, block := p.calls <= p.failFirst, p.answer, p.block
	p.mu.Unlock()
	switch {
	case fail:
		return nil, status.Error(codes.Unavailable, "starting up")
	case block:
		<-ctx.Done()
		return nil, ctx.Err()
	case answer != nil:
		return nil, answer
	}
	return &testgrpc.Empty{}, nil
}

func (p *peerServer) seen() (calls int, md metadata.MD, remaining time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls, p.md, p.remaining
}

// frontServer is the calling service: it serves EmptyCall by calling the
// peer, the way a service checks a reference before writing.
type frontServer struct {
	testgrpc.UnimplementedTestServiceServer
	peer *peer.Conn
	on   []peer.Mapping
}

func (f *frontServer) EmptyCall(ctx context.Context, in *testgrpc.Empty) (*testgrpc.Empty, error) {
	if _, err := testgrpc.NewTestServiceClient(f.peer).EmptyCall(ctx, in); err != nil {
		return nil, f.peer.Err(ctx, err, f.on...)
	}
	return &testgrpc.Empty{}, nil
}

// servePeer serves p in-process and returns its address.
func servePeer(t *testing.T, p *peerServer) string {
	t.Helper()
	return testkit.Serve(t, func(s *grpc.Server) { testgrpc.RegisterTestServiceServer(s, p) }).Target()
}

func dial(t *testing.T, addr string, opts ...peer.Option) *peer.Conn {
	t.Helper()
	c, err := peer.Dial("councils", addr, append([]peer.Option{peer.WithLogger(testkit.Logger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// serveFront serves a front calling c and returns a client of it.
func serveFront(t *testing.T, c *peer.Conn, on ...peer.Mapping) testgrpc.TestServiceClient {
	t.Helper()
	conn := testkit.Serve(t, func(s *grpc.Server) {
		testgrpc.RegisterTestServiceServer(s, &frontServer{peer: c, on: on})
	})
	return testgrpc.NewTestServiceClient(conn)
}

func serviceToken(context.Context) (string, error) { return "service-token", nil }

func TestRequestIDAndCallerCredentialsGoAlong(t *testing.T) {
	p := &peerServer{}
	front := serveFront(t, dial(t, servePeer(t, p), peer.WithCredential(serviceToken)))
	ctx := metadata.AppendToOutgoingContext(context.Background(),
		"x-request-id", "req-7f3a", "authorization", "Bearer caller-token")
	if _, err := front.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	_, md, _ := p.seen()
	if got := md.Get("x-request-id"); len(got) != 1 || got[0] != "req-7f3a" {
		t.Errorf("peer saw x-request-id %q", got)
	}
	// The caller's credentials, not the service's: the peer authorises the
	// original caller.
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer caller-token" {
		t.Errorf("peer saw authorization %q", got)
	}
}

func TestAnonymousCallerIsNotLentTheServiceCredential(t *testing.T) {
	p := &peerServer{}
	front := serveFront(t, dial(t, servePeer(t, p), peer.WithCredential(serviceToken)))
	if _, err := front.EmptyCall(context.Background(), &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, md, _ := p.seen(); len(md.Get("authorization")) != 0 || len(md.Get("x-request-id")) != 0 {
		t.Errorf("peer saw authorization %q, x-request-id %q; want neither", md.Get("authorization"), md.Get("x-request-id"))
	}
}

func TestServiceCredentialOutsideAnyCall(t *testing.T) {
	p := &peerServer{}
	c := dial(t, servePeer(t, p), peer.WithCredential(serviceToken))
	// An event consumer: no incoming call in the context.
	if _, err := testgrpc.NewTestServiceClient(c).EmptyCall(context.Background(), &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, md, _ := p.seen(); strings.Join(md.Get("authorization"), ",") != "Bearer service-token" {
		t.Errorf("peer saw authorization %q", md.Get("authorization"))
	}

	// A credential that cannot be had fails the call before it is sent.
	broken := dial(t, servePeer(t, &peerServer{}), peer.WithCredential(func(context.Context) (string, error) {
		return "", errors.New("signing key missing")
	}))
	_, err := testgrpc.NewTestServiceClient(broken).EmptyCall(context.Background(), &testgrpc.Empty{})
	ctx := context.Background()
	if got := broken.Err(ctx, err); status.Code(got) != codes.Internal || strings.Contains(got.Error(), "signing") {
		t.Errorf("got %v, want a bare INTERNAL", got)
	}
}

func TestDefaultDeadline(t *testing.T) {
	p := &peerServer{}
	c := dial(t, servePeer(t, p), peer.WithTimeout(3*time.Second))
	client := testgrpc.NewTestServiceClient(c)

	if _, err := client.EmptyCall(context.Background(), &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, _, left := p.seen(); left <= 0 || left > 3*time.Second {
		t.Errorf("a call without a deadline reached the peer with %v left, want the default 3s at most", left)
	}

	// The caller's own deadline is kept, also when longer.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := client.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, _, left := p.seen(); left <= 3*time.Second {
		t.Errorf("the caller's one-minute deadline reached the peer with %v left", left)
	}
}

func TestSlowPeerIsUnavailable(t *testing.T) {
	p := &peerServer{block: true}
	front := serveFront(t, dial(t, servePeer(t, p), peer.WithTimeout(200*time.Millisecond)))
	_, err := front.EmptyCall(context.Background(), &testgrpc.Empty{})
	wantUnavailable(t, err)
}

func TestTransientUnavailableIsRetried(t *testing.T) {
	p := &peerServer{failFirst: 2}
	front := serveFront(t, dial(t, servePeer(t, p)))
	if _, err := front.EmptyCall(context.Background(), &testgrpc.Empty{}); err != nil {
		t.Fatalf("two UNAVAILABLE answers then success: %v", err)
	}
	if calls, _, _ := p.seen(); calls != 3 {
		t.Errorf("peer answered %d calls, want 3 (two refused, one served)", calls)
	}

	// A peer that stays unavailable: four attempts, then the clear error.
	down := &peerServer{failFirst: 1000}
	front = serveFront(t, dial(t, servePeer(t, down)))
	_, err := front.EmptyCall(context.Background(), &testgrpc.Empty{})
	wantUnavailable(t, err)
	if calls, _, _ := down.seen(); calls != 4 {
		t.Errorf("peer answered %d attempts, want 4", calls)
	}

	// Other codes are not retried: the answer stands.
	nf := &peerServer{answer: status.Error(codes.NotFound, "councils/x not found")}
	front = serveFront(t, dial(t, servePeer(t, nf)))
	if _, err := front.EmptyCall(context.Background(), &testgrpc.Empty{}); status.Code(err) != codes.NotFound {
		t.Fatalf("got %v", err)
	}
	if calls, _, _ := nf.seen(); calls != 1 {
		t.Errorf("NOT_FOUND was tried %d times", calls)
	}
}

func TestPeerDownIsUnavailableWithAClearMessage(t *testing.T) {
	// An address nothing listens on.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()

	front := serveFront(t, dial(t, addr))
	_, err = front.EmptyCall(context.Background(), &testgrpc.Empty{})
	msg := wantUnavailable(t, err)
	for _, internal := range []string{addr, "refused", "dial", "127.0.0.1"} {
		if strings.Contains(msg, internal) {
			t.Errorf("message %q leaks %q", msg, internal)
		}
	}
}

func wantUnavailable(t *testing.T, err error) string {
	t.Helper()
	st := status.Convert(err)
	const want = "the councils service is unavailable; nothing was written; retry later"
	if st.Code() != codes.Unavailable || st.Message() != want {
		t.Fatalf("got %v, want UNAVAILABLE %q", err, want)
	}
	return st.Message()
}

func TestErrMapsThePeersAnswer(t *testing.T) {
	const name = "councils/nowhere"
	notFound := peer.On(codes.NotFound, apierr.Field("company.council", "%s does not exist", name))

	t.Run("not found, mapped to the caller's field", func(t *testing.T) {
		p := &peerServer{answer: status.Error(codes.NotFound, name+" not found")}
		front := serveFront(t, dial(t, servePeer(t, p)), notFound)
		_, err := front.EmptyCall(context.Background(), &testgrpc.Empty{})
		testkit.WantBadRequest(t, err, "company.council")
	})
	t.Run("caller's problems keep their code, lose the peer's details", func(t *testing.T) {
		answer, _ := status.New(codes.FailedPrecondition, "need is DRAFT, not APPROVED").
			WithDetails(&testgrpc.Empty{})
		p := &peerServer{answer: answer.Err()}
		front := serveFront(t, dial(t, servePeer(t, p)), notFound)
		_, err := front.EmptyCall(context.Background(), &testgrpc.Empty{})
		st := status.Convert(err)
		if st.Code() != codes.FailedPrecondition || st.Message() != "need is DRAFT, not APPROVED" || len(st.Details()) != 0 {
			t.Fatalf("got %v with %d details", err, len(st.Details()))
		}
	})
	t.Run("a request the peer finds bad is our fault", func(t *testing.T) {
		p := &peerServer{answer: status.Error(codes.InvalidArgument, "name: must match councils/{council}, internal detail")}
		front := serveFront(t, dial(t, servePeer(t, p)), notFound)
		_, err := front.EmptyCall(context.Background(), &testgrpc.Empty{})
		st := status.Convert(err)
		if st.Code() != codes.Internal || st.Message() != "internal error calling the councils service" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("the caller's own cancellation", func(t *testing.T) {
		c := dial(t, servePeer(t, &peerServer{}))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := testgrpc.NewTestServiceClient(c).EmptyCall(ctx, &testgrpc.Empty{})
		if got := c.Err(ctx, err, notFound); status.Code(got) != codes.Canceled {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("nil stays nil", func(t *testing.T) {
		if err := dial(t, "127.0.0.1:1").Err(context.Background(), nil, notFound); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAddrFlag(t *testing.T) {
	if peer.FlagName("councils") != "councils-addr" {
		t.Fatal(peer.FlagName("councils"))
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := peer.AddrFlag(fs, "councils")
	if err := fs.Parse(nil); err != nil || *addr != peer.DefaultAddr {
		t.Fatalf("default %q, %v", *addr, err)
	}
	t.Setenv("KN_COMPANIES_ADDR", "companies:9090")
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	addr = peer.AddrFlag(fs, "companies")
	if err := fs.Parse(nil); err != nil || *addr != "companies:9090" {
		t.Fatalf("from env %q, %v", *addr, err)
	}
	if _, err := peer.Dial("councils", ""); err == nil || !strings.Contains(err.Error(), "-councils-addr") {
		t.Fatalf("empty address: %v", err)
	}
}

// A peer that cannot be reached is UNAVAILABLE whatever code the client's
// side of gRPC failed the call with (TestPeersUnavailable of skills once
// got INTERNAL for a closed port): once the connection is in
// TRANSIENT_FAILURE, an INTERNAL raised before any peer was picked, here
// for metadata gRPC refuses to send, and an UNKNOWN are the peer being
// unreachable. With the peer up, the same INTERNAL stays INTERNAL.
func TestUnreachablePeerIsUnavailableWhateverTheClientSideSaid(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	ctx := context.Background()
	badMetadata := metadata.AppendToOutgoingContext(ctx, "not a header key", "x")

	down := dial(t, addr)
	_, err = testgrpc.NewTestServiceClient(down).EmptyCall(ctx, &testgrpc.Empty{})
	wantUnavailable(t, down.Err(ctx, err))
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for s := down.GetState(); s != connectivity.TransientFailure; s = down.GetState() {
		if !down.WaitForStateChange(waitCtx, s) {
			t.Fatalf("connection to a closed port still %s", s)
		}
	}
	_, err = testgrpc.NewTestServiceClient(down).EmptyCall(badMetadata, &testgrpc.Empty{})
	if status.Code(err) != codes.Internal {
		t.Fatalf("premise: gRPC failed the call with %v, not INTERNAL", err)
	}
	wantUnavailable(t, down.Err(ctx, err))
	wantUnavailable(t, down.Err(ctx, errors.New("connection closed before the response")))

	up := dial(t, servePeer(t, &peerServer{}))
	_, err = testgrpc.NewTestServiceClient(up).EmptyCall(badMetadata, &testgrpc.Empty{})
	if got := up.Err(ctx, err); status.Code(got) != codes.Internal {
		t.Fatalf("peer up: got %v, want INTERNAL", got)
	}
	answering := dial(t, servePeer(t, &peerServer{answer: status.Error(codes.Internal, "peer bug")}))
	_, err = testgrpc.NewTestServiceClient(answering).EmptyCall(ctx, &testgrpc.Empty{})
	if got := answering.Err(ctx, err); status.Code(got) != codes.Internal {
		t.Fatalf("peer answering INTERNAL: got %v", got)
	}
}
