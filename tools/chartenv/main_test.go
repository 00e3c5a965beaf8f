package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A fake binary whose -h names two variables, and a rendered chart that
// sets one of them, a misspelt one, and one for a service not built yet.
func TestSettingsABinaryDoesNotReadAreFound(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs a shell script as the fake binary")
	}
	bin := t.TempDir()
	script := "#!/bin/sh\necho '  -redis string  Redis address (env KN_REDIS)' >&2\necho '  -grpc string  listen (env KN_GRPC)' >&2\nexit 0\n"
	if err := os.WriteFile(filepath.Join(bin, "councils"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	manifests := `apiVersion: v1
kind: ConfigMap
metadata: {name: shared}
data: {KN_GRPC: ":9090", KN_TYPO: "x"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kn-councils}
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/kompetensnav/councils:0.1.0
          envFrom: [{configMapRef: {name: shared}}]
          env: [{name: KN_REDIS}, {name: KN_REDIS_WAITS}, {name: KN_SKILLS_ADDR}, {name: OTEL_X}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kn-skills}
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/kompetensnav/skills:0.1.0
          env: [{name: KN_ANYTHING}]
`
	path := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(path, []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, notes, err := check(path, bin)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(problems, "\n")
	for _, want := range []string{"kn-councils sets KN_REDIS_WAITS", "ConfigMap shared sets KN_TYPO"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q miss %q", got, want)
		}
	}
	if len(problems) != 2 {
		t.Errorf("%d problems, want 2: %q", len(problems), problems)
	}
	if n := strings.Join(notes, "\n"); !strings.Contains(n, "KN_SKILLS_ADDR, for skills") || !strings.Contains(n, `no binary "skills"`) {
		t.Errorf("notes %q", n)
	}
}
