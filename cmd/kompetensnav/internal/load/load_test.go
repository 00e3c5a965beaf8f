package load_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/load"
)

// A short run of the load generator: every phase makes calls without
// errors, every enrolment takes the aim of two Redis round trips (one
// pipelined read, one atomic step), and the report names them all. It
// measures nothing: the figures are the full run's (README).
func TestLoadRunsEveryPhaseAndCountsRoundTrips(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed, and CI is set")
		}
		t.Skip("skipped: redis-server is not installed")
	}
	res, err := load.Run(context.Background(), load.Options{Clients: 4, Duration: 300 * time.Millisecond, Participants: 400, Offerings: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []load.Phase{res.Echo, res.GRPC, res.REST} {
		if p.Requests == 0 || p.Errors != 0 {
			t.Fatalf("%s: %d requests, %d errors", p.Name, p.Requests, p.Errors)
		}
	}
	for _, p := range []load.Phase{res.GRPC, res.REST} {
		if p.RoundTrips != 2 || p.Enrolled+p.Waitlisted != p.Requests {
			t.Fatalf("%s: %.2f Redis round trips per enrolment, %d enrolled + %d waitlisted of %d", p.Name, p.RoundTrips, p.Enrolled, p.Waitlisted, p.Requests)
		}
	}
	var out strings.Builder
	res.Print(&out)
	for _, want := range []string{"echo", "gRPC CreateEnrolment", "REST CreateEnrolment", "(b)/(a)", "(c)/(b)", "round trips"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("the report lacks %q:\n%s", want, out.String())
		}
	}
}
