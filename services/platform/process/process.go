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
	"github.com/kompetensnav/kompetensnav/services/platform/telemetry"
)

// Flags are the shared settings.
type Flags struct {
	LogFormat     *string
	LogLevel      *string
	ShutdownGrace *time.Duration
}

// RegisterFlags defines -log-format, -log-level and -shutdown-grace
// (KN_LOG_FORMAT, KN_LOG_LEVEL, KN_SHUTDOWN_GRACE) on fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	return &Flags{
		LogFormat:     config.String(fs, "log-format", "text", "log format: text or json"),
		LogLevel:      config.String(fs, "log-level", "info", "log level: debug, info, warn or error"),
		ShutdownGrace: config.Duration(fs, "shutdown-grace", 20*time.Second, "how long a shutdown waits for calls in flight"),
	}
}

// Logger builds the process logger and makes it the slog default.
func (f *Flags) Logger() (*slog.Logger, error) {
	l, err := telemetry.NewLogger(*f.LogFormat, *f.LogLevel)
	if err != nil {
		return nil, err
	}
	slog.SetDefault(l)
	return l, nil
}

// Start is what every main does first: the logger, a context that ends on
// SIGINT or SIGTERM (the signal to shut down gracefully), and telemetry for
// serviceName. stop flushes telemetry and releases the signals; defer it.
func (f *Flags) Start(serviceName string) (ctx context.Context, log *slog.Logger, stop func(), err error) {
	if log, err = f.Logger(); err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	flush, err := telemetry.Setup(ctx, serviceName)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, log, func() {
		cancel()
		// ctx is over by now; the flush gets its own deadline.
		fctx, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		if err := flush(fctx); err != nil {
			log.Warn("flushing telemetry", "error", err)
		}
	}, nil
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
