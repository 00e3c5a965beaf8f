// Package config reads settings from flags with KN_* environment variables
// as their defaults, so every binary is configured the same way and a flag on
// the command line always wins over the environment.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
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

// Bool defines a bool flag whose default comes from the environment. A
// value that is not a boolean makes Parse fail, unless the flag is given.
func Bool(fs *flag.FlagSet, name string, def bool, u string) *bool {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			def = b
		} else {
			badEnv(fs, name, v, "true or false (also 1 or 0)")
		}
	}
	return fs.Bool(name, def, usage(name, u))
}

// Duration defines a duration flag whose default comes from the
// environment. A value that is not a duration makes Parse fail, unless the
// flag is given.
func Duration(fs *flag.FlagSet, name string, def time.Duration, u string) *time.Duration {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		if d, err := time.ParseDuration(v); err == nil {
			def = d
		} else {
			badEnv(fs, name, v, "a duration with a unit, such as 20s or 1m30s")
		}
	}
	return fs.Duration(name, def, usage(name, u))
}

// Environment values that did not parse, by flag set and flag name, for
// Parse to report.
var (
	badMu   sync.Mutex
	badEnvs = map[*flag.FlagSet]map[string]error{}
)

func badEnv(fs *flag.FlagSet, name, value, want string) {
	badMu.Lock()
	defer badMu.Unlock()
	if badEnvs[fs] == nil {
		badEnvs[fs] = map[string]error{}
	}
	badEnvs[fs][name] = fmt.Errorf("%s=%q is not valid: want %s", EnvName(name), value, want)
}

// Parse parses args with fs and fails if an environment variable behind
// one of its flags held a value of the wrong form (and the flag did not
// override it): a process must not start on a setting it silently
// replaced with its default.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	badMu.Lock()
	defer badMu.Unlock()
	var errs []error
	for name, err := range badEnvs[fs] {
		if !given[name] {
			errs = append(errs, err)
		}
	}
	delete(badEnvs, fs)
	return errors.Join(errs...)
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

// Int defines an int flag whose default comes from the environment. A
// value that is not a whole number makes Parse fail, unless the flag is
// given.
func Int(fs *flag.FlagSet, name string, def int, u string) *int {
	if v, ok := os.LookupEnv(EnvName(name)); ok {
		if n, err := strconv.Atoi(v); err == nil {
			def = n
		} else {
			badEnv(fs, name, v, "a whole number")
		}
	}
	return fs.Int(name, def, usage(name, u))
}
