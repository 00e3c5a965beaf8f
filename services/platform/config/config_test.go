package config_test

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/services/platform/config"
)

func TestEnvName(t *testing.T) {
	for flagName, want := range map[string]string{
		"redis":          "KN_REDIS",
		"redis-master":   "KN_REDIS_MASTER",
		"page-token-key": "KN_PAGE_TOKEN_KEY",
		"otel.endpoint":  "KN_OTEL_ENDPOINT",
		"grpc-Addr":      "KN_GRPC_ADDR",
	} {
		if got := config.EnvName(flagName); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parse(t *testing.T, fs *flag.FlagSet, args ...string) {
	t.Helper()
	if err := config.Parse(fs, args); err != nil {
		t.Fatal(err)
	}
}

// A value of the wrong form in the environment stops the process with a
// message naming the variable and the form it takes.
func TestParseRefusesBadEnvironmentValues(t *testing.T) {
	for _, c := range []struct{ env, value, want string }{
		{"KN_KN_TEST_DEMO", "yes", "KN_KN_TEST_DEMO=\"yes\" is not valid: want true or false"},
		{"KN_KN_TEST_GRACE", "abc", "KN_KN_TEST_GRACE=\"abc\" is not valid: want a duration"},
		{"KN_KN_TEST_GRACE", "30", "KN_KN_TEST_GRACE=\"30\" is not valid: want a duration"},
	} {
		t.Setenv(c.env, c.value)
		fs := newFlagSet()
		config.Bool(fs, "kn-test-demo", false, "demo")
		config.Duration(fs, "kn-test-grace", time.Second, "grace")
		err := config.Parse(fs, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%s: %v, want %q", c.env, c.value, err, c.want)
		}
		t.Setenv(c.env, "")
	}
}

func TestString(t *testing.T) {
	t.Run("default without env or flag", func(t *testing.T) {
		fs := newFlagSet()
		v := config.String(fs, "kn-test-addr", "localhost:6379", "address")
		parse(t, fs)
		if *v != "localhost:6379" {
			t.Fatalf("got %q", *v)
		}
	})
	t.Run("env is the default", func(t *testing.T) {
		t.Setenv("KN_KN_TEST_ADDR", "redis:6380")
		fs := newFlagSet()
		v := config.String(fs, "kn-test-addr", "localhost:6379", "address")
		parse(t, fs)
		if *v != "redis:6380" {
			t.Fatalf("got %q, want the env value", *v)
		}
	})
	t.Run("empty env still counts", func(t *testing.T) {
		t.Setenv("KN_KN_TEST_ADDR", "")
		fs := newFlagSet()
		v := config.String(fs, "kn-test-addr", "localhost:6379", "address")
		parse(t, fs)
		if *v != "" {
			t.Fatalf("got %q, want the (empty) env value", *v)
		}
	})
	t.Run("flag wins over env", func(t *testing.T) {
		t.Setenv("KN_KN_TEST_ADDR", "redis:6380")
		fs := newFlagSet()
		v := config.String(fs, "kn-test-addr", "localhost:6379", "address")
		parse(t, fs, "-kn-test-addr", "flag:1")
		if *v != "flag:1" {
			t.Fatalf("got %q, want the flag value", *v)
		}
	})
	t.Run("usage names the env var", func(t *testing.T) {
		fs := newFlagSet()
		config.String(fs, "kn-test-addr", "", "Redis address")
		if u := fs.Lookup("kn-test-addr").Usage; !strings.Contains(u, "Redis address") || !strings.Contains(u, "KN_KN_TEST_ADDR") {
			t.Fatalf("usage %q", u)
		}
	})
}

func TestBool(t *testing.T) {
	for _, c := range []struct {
		name string
		env  string // "-" for unset
		def  bool
		args []string
		want bool
	}{
		{"default", "-", true, nil, true},
		{"env true", "true", false, nil, true},
		{"env 0", "0", true, nil, false},
		{"flag wins over env", "true", false, []string{"-kn-test-flag=false"}, false},
		{"bare flag wins over env", "false", false, []string{"-kn-test-flag"}, true},
		{"bad env overridden by the flag", "maybe", true, []string{"-kn-test-flag=false"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "-" {
				t.Setenv("KN_KN_TEST_FLAG", c.env)
			}
			fs := newFlagSet()
			v := config.Bool(fs, "kn-test-flag", c.def, "a switch")
			parse(t, fs, c.args...)
			if *v != c.want {
				t.Fatalf("got %v, want %v", *v, c.want)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	for _, c := range []struct {
		name string
		env  string // "-" for unset
		args []string
		want time.Duration
	}{
		{"default", "-", nil, 10 * time.Second},
		{"env", "3s", nil, 3 * time.Second},
		{"flag wins over env", "3s", []string{"-kn-test-grace", "1m"}, time.Minute},
		{"bad env overridden by the flag", "soon", []string{"-kn-test-grace=2s"}, 2 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "-" {
				t.Setenv("KN_KN_TEST_GRACE", c.env)
			}
			fs := newFlagSet()
			v := config.Duration(fs, "kn-test-grace", 10*time.Second, "grace")
			parse(t, fs, c.args...)
			if *v != c.want {
				t.Fatalf("got %v, want %v", *v, c.want)
			}
		})
	}
}

func TestList(t *testing.T) {
	for in, want := range map[string][]string{
		"":                      nil,
		" , ,":                  nil,
		"a:1":                   {"a:1"},
		"a:1, b:2 ,,c:3":        {"a:1", "b:2", "c:3"},
		"  sentinel-0:26379  ,": {"sentinel-0:26379"},
	} {
		if got := config.List(in); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", in, got, want)
		}
	}
}
