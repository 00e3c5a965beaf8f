// Package process holds the settings every Kompetensnav binary shares
// (logging, shutdown), so each main only adds its own.
package process

import (
	"flag"
	"log/slog"
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
