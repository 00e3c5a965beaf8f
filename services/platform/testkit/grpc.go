package testkit

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Serve runs a platform server with what register registers on a loopback
// port, and returns a client connection to it over real TCP. Both end with t.
func Serve(t testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	srv, err := server.New(Logger())
	if err != nil {
		t.Fatal(err)
	}
	register(srv.GRPC)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return conn
}
