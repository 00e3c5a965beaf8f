package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/load"
)

const loadUsage = `usage: kompetensnav load [-clients 50] [-duration 10s] [-participants 2000] [-offerings 100] [-redis-server PATH]

Measures enrolment on this machine: starts its own redis-server, a bare gRPC
echo server and the enrolment service (same server options and guard), and
the REST gateway; drives (a) echo, (b) CreateEnrolment over gRPC and (c) the
same through the gateway, each with -clients callers for -duration; prints
throughput, p50, p99, the ratios (b)/(a) and (c)/(b), and the Redis round
trips per enrolment.
`

// loadCommand runs "kompetensnav load …" and returns the exit status.
func loadCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kompetensnav load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, loadUsage) }
	var o load.Options
	fs.IntVar(&o.Clients, "clients", 50, "concurrent callers in each phase")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long each phase runs")
	fs.IntVar(&o.Participants, "participants", 2000, "participants to enrol (each phase enrols fresh participant and offering pairs)")
	fs.IntVar(&o.Offerings, "offerings", 100, "offerings of 500 seats to enrol into")
	fs.StringVar(&o.RedisServer, "redis-server", "", "the redis-server binary (default: on PATH)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := load.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "kompetensnav load:", err)
		return 1
	}
	res.Print(stdout)
	return 0
}
