// Package process holds the settings every Kompetensnav binary shares
// (logging, shutdown), so each main only adds its own.
package process

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/telemetry"
)

// Flags are the shared settings.
type Flags struct {
	LogFormat     *string
	LogLevel      *string
	ShutdownGrace *time.Duration
	DrainDelay    *time.Duration
	Telemetry     *telemetry.Flags
}

// RegisterFlags defines -log-format, -log-level, -shutdown-grace,
// -drain-delay and -metrics-addr (KN_LOG_FORMAT, KN_LOG_LEVEL, …) on fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	return &Flags{
		LogFormat:     config.String(fs, "log-format", "text", "log format: text or json"),
		LogLevel:      config.String(fs, "log-level", "info", "log level: debug, info, warn or error"),
		ShutdownGrace: config.Duration(fs, "shutdown-grace", 20*time.Second, "how long a shutdown waits for calls in flight"),
		DrainDelay: config.Duration(fs, "drain-delay", 0,
			"after SIGTERM, how long to go on serving while reporting not ready (so load balancers stop sending) before the shutdown starts"),
		Telemetry: telemetry.RegisterFlags(fs),
	}
}

// Logger builds the process logger and makes it the slog default; go-redis
// logs through it too.
func (f *Flags) Logger() (*slog.Logger, error) {
	l, err := telemetry.NewLogger(*f.LogFormat, *f.LogLevel)
	if err != nil {
		return nil, err
	}
	slog.SetDefault(l)
	redisx.UseLogger(l)
	return l, nil
}

// FlushTimeout bounds the telemetry flush at exit.
const FlushTimeout = time.Second

// Start is what every main does first: the logger, a context that ends on
// SIGINT or SIGTERM (the signal to shut down gracefully), and telemetry for
// serviceName. stop flushes telemetry and releases the signals; defer it.
//
// With -drain-delay the context ends that long after the signal; in
// between, Draining(ctx) is closed, which is when servers report not ready
// (server.Server.Run, the gateway) while still serving. A second signal
// ends the delay at once.
func (f *Flags) Start(serviceName string) (ctx context.Context, log *slog.Logger, stop func(), err error) {
	if log, err = f.Logger(); err != nil {
		return nil, nil, nil, err
	}
	var drain time.Duration
	if f.DrainDelay != nil {
		drain = *f.DrainDelay
	}
	ctx, cancel := signalContext(log, drain)
	var tf telemetry.Flags
	if f.Telemetry != nil {
		tf = *f.Telemetry
	}
	flush, err := tf.Setup(ctx, serviceName)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, log, func() {
		cancel()
		// ctx is over by now; the flush gets its own, short deadline so
		// the process exits close to its shutdown grace.
		fctx, done := context.WithTimeout(context.Background(), FlushTimeout)
		defer done()
		if err := flush(fctx); err != nil {
			log.Warn("flushing telemetry", "error", err)
		}
	}, nil
}

type drainKey struct{}

// Draining is closed when the process was told to stop and is draining
// (reporting not ready, still serving) until its context ends. It is nil,
// and so never closed, for a context Start did not make.
func Draining(ctx context.Context) <-chan struct{} {
	c, _ := ctx.Value(drainKey{}).(chan struct{})
	return c
}

// WithDraining returns a context carrying drain as its Draining channel
// (for tests and embedders that start servers themselves).
func WithDraining(ctx context.Context, drain chan struct{}) context.Context {
	return context.WithValue(ctx, drainKey{}, drain)
}

func signalContext(log *slog.Logger, delay time.Duration) (context.Context, context.CancelFunc) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	drain := make(chan struct{})
	ctx, cancel := context.WithCancel(WithDraining(context.Background(), drain))
	go func() {
		select {
		case sig := <-sigs:
			if delay > 0 {
				log.Info("stopping: reporting not ready, still serving", "signal", sig.String(), "drain_delay", delay)
			}
		case <-ctx.Done():
			signal.Stop(sigs)
			return
		}
		close(drain)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-sigs:
		case <-ctx.Done():
		}
		t.Stop()
		signal.Stop(sigs)
		cancel()
	}()
	return ctx, cancel
}

// Exit ends a process that failed to start or to run: one line on stderr,
// a JSON log record when logFormat is "json" (every line is JSON then),
// and exit status 1. It never panics, whatever err is.
func Exit(prog, logFormat string, err error) {
	if logFormat == "json" {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error(prog+" stopped", "error", err.Error())
	} else {
		fmt.Fprintln(os.Stderr, prog+":", err)
	}
	os.Exit(1)
}
