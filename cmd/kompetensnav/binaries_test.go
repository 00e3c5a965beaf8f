package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
)

// Every binary the chart runs (services/*/cmd/*, gateway/cmd/gateway) ends
// a failed start in a clear last line and exit status 1, never a panic:
// a setting of the wrong form, and (services) a Redis that is not there.
func TestEveryBinaryFailsToStartCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: builds every binary")
	}
	if top := testkit.Topology(); top != "standalone" {
		t.Skipf("skipped with KN_TEST_REDIS=%s: no Redis topology is involved (make test runs it)", top)
	}
	dirs, err := filepath.Glob("../../services/*/cmd/*")
	if err != nil {
		t.Fatal(err)
	}
	dirs = append(dirs, "../../gateway/cmd/gateway")
	bin := t.TempDir()
	// One go build for all: the packages build and link in parallel.
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, dir := range dirs {
		args = append(args, "./"+dir)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			exe := filepath.Join(bin, name)
			cases := [][]string{{"KN_SHUTDOWN_GRACE=abc"}}
			if name != "gateway" {
				cases = append(cases, []string{"KN_REDIS=127.0.0.1:1", "KN_REDIS_WAIT=0s"})
			}
			for _, env := range cases {
				cmd := exec.Command(exe, "-grpc", "127.0.0.1:0")
				if name == "gateway" {
					cmd = exec.Command(exe, "-http", "127.0.0.1:0")
				}
				cmd.Env = append(os.Environ(), env...)
				out, err := cmd.CombinedOutput()
				ee, ok := err.(*exec.ExitError)
				text := strings.TrimSpace(string(out))
				lines := strings.Split(text, "\n")
				last := lines[len(lines)-1]
				if !ok || ee.ExitCode() != 1 || strings.Contains(text, "panic") || strings.Contains(text, "goroutine ") ||
					!strings.HasPrefix(last, name+": ") {
					t.Fatalf("%v: exit %v, output:\n%s\nwant exit 1 and a last line %q…", env, err, text, name+": ")
				}
			}
		})
	}
}
