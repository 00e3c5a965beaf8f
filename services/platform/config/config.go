// Package config reads settings from flags with KN_* environment variables
// as their defaults, so every binary is configured the same way and a flag on
// the command line always wins over the environment.
package config

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// EnvName is the environment variable behind a flag: "redis-master" → KN_REDIS_MASTER.
func EnvName(flagName string) string {
	return "KN_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

func usage(name, u string) string { return fmt.Sprintf("%s (env %s)", u, EnvName(name)) }

// String defines a string flag whose default comes from the environment.
func String(fs *flag.FlagSet, name, def, u string) *string {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		def = v
	}
	return fs.String(name, def, usage(name, u))
}

// Bool defines a bool flag whose default comes from the environment.
func Bool(fs *flag.FlagSet, name string, def bool, u string) *bool {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			def = b
		} else {
			fmt.Fprintf(os.Stderr, "ignoring %s=%q: not a boolean\n", EnvName(name), v)
		}
	}
	return fs.Bool(name, def, usage(name, u))
}

// Duration defines a duration flag whose default comes from the environment.
func Duration(fs *flag.FlagSet, name string, def time.Duration, u string) *time.Duration {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		if d, err := time.ParseDuration(v); err == nil {
			def = d
		} else {
			fmt.Fprintf(os.Stderr, "ignoring %s=%q: not a duration\n", EnvName(name), v)
		}
	}
	return fs.Duration(name, def, usage(name, u))
}

// List splits a comma-separated setting, dropping blanks.
func List(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
