package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kompetensnav/kompetensnav/cmd/kompetensnav/internal/app"
	skillsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/skills/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
)

var demoTaxonomy = filepath.Join("..", "..", "services", "skills", "demotaxonomy", "taxonomy.json")

func TestImportSkillsCommand(t *testing.T) {
	rdb := testkit.Redis(t)
	a, err := app.Start(context.Background(), app.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Logger: testkit.Logger(),
		Redis: testkit.Options(t, rdb)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(5 * time.Second) })
	run := func(args ...string) (string, string, int) {
		var out, errs bytes.Buffer
		code := importSkillsCommand(args, &out, &errs)
		return out.String(), errs.String(), code
	}

	// The demo file in batches of 30: three calls, three versions.
	out, errs, code := run("-grpc", a.GRPCAddr, "-key", a.BootstrapKey, "-batch", "30", demoTaxonomy)
	if code != 0 || !strings.Contains(out, "batch 1/3 (30 skills): 30 created, 0 updated, 0 unchanged; taxonomy version 1") ||
		!strings.Contains(out, "imported 81 skills from "+demoTaxonomy+": 81 created, 0 updated, 0 unchanged; taxonomy version 3") {
		t.Fatalf("%d\n%s\n%s", code, out, errs)
	}
	// Again, with the key from the environment as the README has it:
	// nothing changes.
	t.Setenv("KN_KEY", a.BootstrapKey)
	out, errs, code = run("-grpc", a.GRPCAddr, demoTaxonomy)
	if code != 0 || !strings.Contains(out, "batch 1/1 (81 skills): 0 created, 0 updated, 81 unchanged; taxonomy version 3") {
		t.Fatalf("%d\n%s\n%s", code, out, errs)
	}

	// Narrower skills first in the file, one a batch: still imported,
	// broader skills first.
	dir := t.TempDir()
	reversed := filepath.Join(dir, "reversed.json")
	if err := os.WriteFile(reversed, []byte(`{"skills": [
		{"name": "skills/c", "preferredLabel": {"sv": "C"}, "broader": "skills/b"},
		{"name": "skills/b", "preferredLabel": {"sv": "B"}, "broader": "skills/a"},
		{"name": "skills/a", "preferredLabel": {"sv": "A"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code = run("-grpc", a.GRPCAddr, "-batch", "1", reversed)
	if code != 0 || !strings.Contains(out, "3 created") {
		t.Fatalf("%d\n%s\n%s", code, out, errs)
	}

	// A bad entry: refused with the field, nothing of its batch written.
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"skills": [{"name": "skills/x", "preferredLabel": {"sv": "X"}}, {"name": "skills/y", "preferredLabel": {"en": "Y"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code = run("-grpc", a.GRPCAddr, bad)
	if code != 1 || !strings.Contains(out, "refused, nothing of it written") || !strings.Contains(errs, "skills[1].preferred_label") {
		t.Fatalf("%d\n%s\n%s", code, out, errs)
	}
	for _, args := range [][]string{{}, {"-grpc", a.GRPCAddr, "-batch", "5001", bad}, {"a", "b"}} {
		if _, _, code := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if _, errs, code := run("-grpc", a.GRPCAddr, filepath.Join(dir, "none.json")); code != 1 || errs == "" {
		t.Errorf("missing file: %d %q", code, errs)
	}
	t.Setenv("KN_KEY", "")
	if _, errs, code := run("-grpc", a.GRPCAddr, bad); code != 1 || !strings.Contains(errs, "no key") {
		t.Errorf("without a key: %d %q", code, errs)
	}
}

func TestParentsFirst(t *testing.T) {
	s := func(name, broader string) *skillsv1.Skill { return &skillsv1.Skill{Name: name, Broader: broader} }
	got := parentsFirst([]*skillsv1.Skill{s("d", "c"), s("c", "b"), s("x", ""), s("b", "a"), s("a", ""), s("e", "outside")})
	var order []string
	for _, e := range got {
		order = append(order, e.GetName())
	}
	if !slices.Equal(order, []string{"a", "b", "c", "d", "x", "e"}) {
		t.Fatalf("%v", order)
	}
	// A cycle does not loop forever; the service refuses it.
	if got := parentsFirst([]*skillsv1.Skill{s("p", "q"), s("q", "p")}); len(got) != 2 {
		t.Fatalf("%v", got)
	}
}
