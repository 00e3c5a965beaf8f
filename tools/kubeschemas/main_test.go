package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestSuffixIsKubeconformsKindSuffix(t *testing.T) {
	for _, c := range []struct {
		k    gvk
		want string
	}{
		{gvk{"", "v1", "Service"}, "-v1"},
		{gvk{"apps", "v1", "Deployment"}, "-apps-v1"},
		{gvk{"networking.k8s.io", "v1", "NetworkPolicy"}, "-networking-v1"},
		{gvk{"autoscaling", "v2", "HorizontalPodAutoscaler"}, "-autoscaling-v2"},
	} {
		if got := suffix(c.k); got != c.want {
			t.Errorf("suffix(%v) = %q, want %q", c.k, got, c.want)
		}
	}
}

// A kind's file stands alone (its definitions reached through $ref are in
// it), declared objects refuse other properties, unless Kubernetes says
// they keep unknown fields, and an int-or-string takes both.
func TestSchemasAreStandaloneAndStrict(t *testing.T) {
	spec := map[string]any{"definitions": map[string]any{
		"x.Thing": map[string]any{
			"type": "object",
			"properties": map[string]any{
				"spec":  map[string]any{"$ref": "#/definitions/x.Spec"},
				"extra": map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"type": "string"}}, "x-kubernetes-preserve-unknown-fields": true},
			},
			"x-kubernetes-group-version-kind": []any{map[string]any{"group": "x.io", "version": "v1", "kind": "Thing"}},
		},
		"x.Spec":   map[string]any{"type": "object", "properties": map[string]any{"port": map[string]any{"$ref": "#/definitions/x.Port"}}},
		"x.Port":   map[string]any{"type": "string", "format": "int-or-string"},
		"x.Unused": map[string]any{"type": "object"},
	}}
	dir := t.TempDir()
	b, _ := json.Marshal(spec)
	in := filepath.Join(dir, "swagger.json")
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := run(in, filepath.Join(dir, "out"))
	if err != nil || n != 1 {
		t.Fatalf("run: %d schemas, %v", n, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "out", "thing-x-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Ref         string                    `json:"$ref"`
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Ref != "#/definitions/x.Thing" || len(got.Definitions) != 3 || got.Definitions["x.Unused"] != nil {
		t.Fatalf("ref %q, definitions %v: want x.Thing and what it reaches", got.Ref, got.Definitions)
	}
	if got.Definitions["x.Thing"]["additionalProperties"] != false || got.Definitions["x.Spec"]["additionalProperties"] != false {
		t.Errorf("declared objects are not strict: %v", got.Definitions)
	}
	extra := got.Definitions["x.Thing"]["properties"].(map[string]any)["extra"].(map[string]any)
	if _, ok := extra["additionalProperties"]; ok {
		t.Errorf("an object preserving unknown fields was made strict")
	}
	if _, ok := got.Definitions["x.Port"]["oneOf"]; !ok || got.Definitions["x.Port"]["type"] != nil {
		t.Errorf("int-or-string: %v", got.Definitions["x.Port"])
	}
}
