package server_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/process"
	"github.com/kompetensnav/kompetensnav/services/platform/server"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Run with a drain: from the drain signal health says NOT_SERVING while
// new calls are still served and the port stays open; only when the
// context ends does the shutdown begin.
func TestRunReportsNotServingWhileDrainingThenStops(t *testing.T) {
	svc := newTestService()
	close(svc.release) // Block returns at once
	srv, err := server.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.GRPC.RegisterService(&testServiceDesc, svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	drain := make(chan struct{})
	ctx, cancel := context.WithCancel(process.WithDraining(context.Background(), drain))
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx, lis, 5*time.Second) }()
	conn := dial(t, lis.Addr().String())
	health := healthpb.NewHealthClient(conn)
	status := func() healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, err := health.Check(ctxFor(t), &healthpb.HealthCheckRequest{Service: testServiceName})
			if err == nil {
				return r.GetStatus()
			}
			if time.Now().After(deadline) {
				t.Fatalf("health: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if s := status(); s != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("before the drain: %v", s)
	}
	close(drain)
	deadline := time.Now().Add(5 * time.Second)
	for status() != healthpb.HealthCheckResponse_NOT_SERVING {
		if time.Now().After(deadline) {
			t.Fatal("still SERVING after the drain began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Still serving calls, on the same port, to a new connection too.
	if err := call(ctxFor(t), dial(t, lis.Addr().String()), "Block"); err != nil {
		t.Fatalf("a call while draining: %v", err)
	}
	select {
	case err := <-ran:
		t.Fatalf("Run returned while draining: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the context ended")
	}
}

// Run returns within the grace even when a cleanup (closing a Redis that
// hangs, say) never finishes.
func TestRunExitsByTheGraceWhateverTheCleanupsDo(t *testing.T) {
	srv, err := server.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.GRPC.RegisterService(&testServiceDesc, newTestService())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hung := make(chan struct{})
	defer close(hung)
	ran := make(chan error, 1)
	const grace = 500 * time.Millisecond
	go func() { ran <- srv.Run(ctx, lis, grace, func() { <-hung }) }()
	conn := dial(t, lis.Addr().String())
	if _, err := healthpb.NewHealthClient(conn).Check(ctxFor(t), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	cancel()
	start := time.Now()
	select {
	case <-ran:
	case <-time.After(grace + 2*time.Second):
		t.Fatalf("Run still running %s after the context ended (grace %s)", time.Since(start), grace)
	}
}
