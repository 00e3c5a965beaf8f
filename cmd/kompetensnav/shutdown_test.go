package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The process as Kubernetes stops it: on SIGTERM it first drains for
// -drain-delay (/readyz 503, calls still answered, the port still open),
// then shuts down and exits, well within drain + grace.
func TestSIGTERMDrainsThenExits(t *testing.T) {
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	key := strings.Repeat("k", 40)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KN_TEST_MAIN=1",
		"KN_TEST_ARGS=-http "+httpAddr+" -grpc "+grpcAddr+" -drain-delay 2s -shutdown-grace 2s -bootstrap-key "+key)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()

	get := func(path string) int {
		req, _ := http.NewRequest("GET", "http://"+httpAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for get("/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	deadline = time.Now().Add(time.Second)
	for get("/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 503 within a second of SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := get("/v1/councils"); st != http.StatusOK {
		t.Fatalf("a call while draining: %d, want 200", st)
	}
	if left := 2*time.Second - time.Since(signalled) - 200*time.Millisecond; left > 0 {
		select {
		case err := <-exited:
			t.Fatalf("exited during the drain (%s after SIGTERM): %v", time.Since(signalled), err)
		case <-time.After(left):
		}
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still running %s after SIGTERM (drain 2s, grace 2s)", time.Since(signalled))
	}
}
