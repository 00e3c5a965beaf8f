package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kompetensnav/kompetensnav/services/enrolment"
	"github.com/kompetensnav/kompetensnav/services/enrolment/pii"
	"github.com/kompetensnav/kompetensnav/services/platform/config"
	"github.com/kompetensnav/kompetensnav/services/platform/redisx"
	"github.com/kompetensnav/kompetensnav/services/platform/telemetry"
	"google.golang.org/grpc/status"
)

const rotateUsage = `usage: kompetensnav rotate-pii-key [flags]

Re-encrypts participants' personal data in the enrolment service's Redis
(-redis, KN_REDIS) with the first key of KN_PII_KEY: every participant that
another key of KN_PII_KEY sealed is sealed again, in batches of -batch, one
atomic write each, with progress logged after every batch. The service may
keep running meanwhile (run it with the same keys, the new one first).

A run that is interrupted (killed, Redis gone) is resumed by running it
again: participants sealed with the first key already are skipped. It exits
0 when every participant is sealed with the first key, and the older keys
may then be removed from KN_PII_KEY; otherwise 1, with one last line naming
the cause (participants sealed with a key that is not in KN_PII_KEY among
them). KN_PII_INDEX_KEY must be the key the data was written with.

flags:
`

// rotatePIIKeyCommand runs "kompetensnav rotate-pii-key …" and returns the
// exit status; log lines go to stderr.
func rotatePIIKeyCommand(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("kompetensnav rotate-pii-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rotateUsage); fs.PrintDefaults() }
	rf := redisx.RegisterFlags(fs, "127.0.0.1:6379")
	kf := pii.RegisterFlags(fs)
	batch := config.Int(fs, "batch", enrolment.DefaultRotateBatch, "participants read per Redis round trip")
	logFormat := config.String(fs, "log-format", "text", "log format: text or json")
	logLevel := config.String(fs, "log-level", "info", "log level: debug, info, warn or error")
	if err := config.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		msg := err.Error()
		if st, ok := status.FromError(err); ok {
			msg = st.Message()
		}
		if *logFormat == "json" {
			slog.New(slog.NewJSONHandler(stderr, nil)).Error("kompetensnav rotate-pii-key failed", "error", msg)
		} else {
			fmt.Fprintln(stderr, "kompetensnav rotate-pii-key:", msg)
		}
		return 1
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected arguments %q (settings are flags or KN_* variables)", fs.Args()))
	}
	if *batch < 1 {
		return fail(errors.New("-batch must be at least 1"))
	}
	log, err := telemetry.NewLoggerTo(stderr, *logFormat, *logLevel)
	if err != nil {
		return fail(err)
	}
	redisx.UseLogger(log)
	keys, err := kf.Keys(false)
	if err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rdb, err := redisx.Connect(ctx, rf.Options())
	if err != nil {
		return fail(err)
	}
	defer rdb.Close()
	svc, err := enrolment.New(enrolment.Options{Redis: rdb, Logger: log, Keys: keys})
	if err != nil {
		return fail(err)
	}
	log.Info("re-encrypting participants' personal data", "sealing_key", keys.SealingKeyID(),
		"keys", strings.Join(keys.KeyIDs(), ","), "batch", *batch)
	r, err := svc.RotatePIIKey(ctx, enrolment.RotateOptions{Batch: *batch, Progress: func(r enrolment.Rotation) {
		log.Info("re-encrypting", "scanned", r.Scanned, "resealed", r.Resealed, "current", r.Current, "unknown_key", r.UnknownTotal())
	}})
	if err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		return fail(fmt.Errorf("stopped after %d participants (%d resealed); run it again to resume: %w", r.Scanned, r.Resealed, err))
	}
	if n := r.UnknownTotal(); n > 0 {
		return fail(fmt.Errorf("%d of %d participants are sealed with keys not in KN_PII_KEY (%s): they cannot be read; "+
			"add those keys (after the first) and run again", n, r.Scanned, strings.Join(r.UnknownKeys(), ", ")))
	}
	log.Info("every participant is sealed with the first key: the other keys of KN_PII_KEY may be removed",
		"sealing_key", r.SealingKey, "scanned", r.Scanned, "resealed", r.Resealed, "current", r.Current)
	return 0
}
