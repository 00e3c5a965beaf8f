package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain runs main itself when a test asks for it (KN_TEST_MAIN=1), so
// start-up can be tested as a user meets it: exit status and output.
func TestMain(m *testing.M) {
	if os.Getenv("KN_TEST_MAIN") == "1" {
		os.Args = append([]string{"kompetensnav"}, strings.Fields(os.Getenv("KN_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runMain(t *testing.T, args string, env ...string) (stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"KN_TEST_MAIN=1", "KN_TEST_ARGS=" + args}, env...)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return errb.String(), 0
}

// Every start-up failure ends in one clear line and exit status 1, never a
// panic; a setting of the wrong form is refused, not replaced.
func TestStartUpFailures(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free := "-grpc 127.0.0.1:0 -http 127.0.0.1:0"
	for _, c := range []struct {
		name, args string
		env        []string
		want       string
	}{
		{"bad boolean env", free, []string{"KN_DEMO=yes"}, `KN_DEMO="yes" is not valid: want true or false`},
		{"bad duration env", free, []string{"KN_SHUTDOWN_GRACE=abc"}, `KN_SHUTDOWN_GRACE="abc" is not valid: want a duration`},
		{"redis unreachable", free + " -redis 127.0.0.1:1 -redis-wait 0", nil, "redis at [127.0.0.1:1]"},
		{"redis unreachable after the wait", free + " -redis 127.0.0.1:1 -redis-wait 4s", nil, "Redis not reachable yet; retrying"},
		{"HTTP port taken", "-grpc 127.0.0.1:0 -http " + taken.Addr().String(), nil, "HTTP address"},
		{"gRPC port taken", "-http 127.0.0.1:0 -grpc " + taken.Addr().String(), nil, "gRPC address"},
		{"unknown municipality", free + " -default-municipalities 1480,9999", nil, "9999 is not an SCB municipality code"},
		{"issuer key file missing", free + " -issuer-key-file /nonexistent/issuer.pem", nil, "-issuer-key-file"},
		{"issuer key not a key", free + " -issuer-key-file main_test.go", nil, "no PEM block in the issuer key file"},
		{"issuer URL not a URL", free, []string{"KN_ISSUER_URL=kompetensnav.se"}, "is not an http or https URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, code := runMain(t, c.args, c.env...)
			if code != 1 || !strings.Contains(out, c.want) || strings.Contains(out, "panic") || strings.Contains(out, "goroutine") {
				t.Fatalf("exit %d, output:\n%s\nwant exit 1 and %q", code, out, c.want)
			}
		})
	}
}

// With -log-format json, what the process says on failing is JSON too.
func TestStartUpFailureInJSONMode(t *testing.T) {
	out, code := runMain(t, "-log-format json -grpc 127.0.0.1:0 -http 127.0.0.1:0", "KN_DEMO=maybe")
	if code != 1 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if !strings.Contains(rec["error"].(string), "KN_DEMO") {
			t.Fatalf("record %v does not name KN_DEMO", rec)
		}
	}
}
