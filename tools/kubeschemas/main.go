// Command kubeschemas turns the Kubernetes OpenAPI document (swagger.json,
// shipped in the k8s.io/kubernetes Go module under api/openapi-spec) into
// one standalone, strict JSON schema per kind, named as kubeconform looks
// them up ({kind}-{group}-{version}.json), so rendered manifests can be
// validated with no network beyond the Go module proxy.
//
// Strict means what kubeconform's -strict schemas mean: an object with
// declared properties accepts no others, so a misspelt field fails.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	spec := flag.String("swagger", "", "path of the Kubernetes swagger.json")
	out := flag.String("out", "", "directory to write the schemas into")
	flag.Parse()
	if *spec == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: kubeschemas -swagger swagger.json -out DIR")
		os.Exit(2)
	}
	n, err := run(*spec, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeschemas:", err)
		os.Exit(1)
	}
	fmt.Printf("kubeschemas: %d schemas in %s\n", n, *out)
}

type gvk struct{ Group, Version, Kind string }

func run(spec, out string) (int, error) {
	b, err := os.ReadFile(spec)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return 0, fmt.Errorf("%s: %w", spec, err)
	}
	if len(doc.Definitions) == 0 {
		return 0, fmt.Errorf("%s has no definitions", spec)
	}
	defs := map[string]any{}
	for name, d := range doc.Definitions {
		defs[name] = fix(name, d)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	names := make([]string, 0, len(doc.Definitions))
	for name := range doc.Definitions {
		names = append(names, name)
	}
	sort.Strings(names)
	n := 0
	for _, name := range names {
		for _, k := range kinds(doc.Definitions[name]) {
			file := filepath.Join(out, strings.ToLower(k.Kind)+suffix(k)+".json")
			if err := write(file, name, defs); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// kinds are the group/version/kinds a definition is the schema of.
func kinds(d map[string]any) []gvk {
	raw, _ := d["x-kubernetes-group-version-kind"].([]any)
	var out []gvk
	for _, r := range raw {
		m, _ := r.(map[string]any)
		g, _ := m["group"].(string)
		v, _ := m["version"].(string)
		k, _ := m["kind"].(string)
		if k != "" && v != "" {
			out = append(out, gvk{g, v, k})
		}
	}
	return out
}

// suffix is kubeconform's KindSuffix: -v1 for the core group, else
// -<first label of the group>-<version> (apps/v1: -apps-v1,
// networking.k8s.io/v1: -networking-v1).
func suffix(k gvk) string {
	if k.Group == "" {
		return "-" + strings.ToLower(k.Version)
	}
	return "-" + strings.ToLower(strings.Split(k.Group, ".")[0]) + "-" + strings.ToLower(k.Version)
}

// write writes the schema of root: a $ref to it plus every definition it
// reaches, so the file stands alone (recursive types stay references).
func write(file, root string, defs map[string]any) error {
	reach := map[string]any{}
	var walk func(name string)
	walk = func(name string) {
		if _, seen := reach[name]; seen {
			return
		}
		d, ok := defs[name]
		if !ok {
			return
		}
		reach[name] = d
		for _, r := range refs(d, nil) {
			walk(r)
		}
	}
	walk(root)
	schema := map[string]any{
		"$schema":     "http://json-schema.org/draft-07/schema#",
		"$ref":        "#/definitions/" + root,
		"definitions": reach,
	}
	b, err := json.Marshal(schema)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

func refs(v any, acc []string) []string {
	switch t := v.(type) {
	case map[string]any:
		if r, ok := t["$ref"].(string); ok {
			acc = append(acc, strings.TrimPrefix(r, "#/definitions/"))
		}
		for _, c := range t {
			acc = refs(c, acc)
		}
	case []any:
		for _, c := range t {
			acc = refs(c, acc)
		}
	}
	return acc
}

// fix adapts one definition to what manifests legitimately hold: an
// int-or-string or a quantity may be a number in YAML, and (strictness)
// objects with declared properties accept no others unless Kubernetes says
// they preserve unknown fields.
func fix(name string, d map[string]any) any {
	switch name {
	case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	case "io.k8s.apimachinery.pkg.api.resource.Quantity":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	}
	return strict(d)
}

func strict(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t)+1)
		for k, c := range t {
			if k == "x-kubernetes-group-version-kind" {
				out[k] = c
				continue
			}
			out[k] = strict(c)
		}
		if f, _ := t["format"].(string); f == "int-or-string" {
			delete(out, "type")
			delete(out, "format")
			out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
		_, hasProps := t["properties"]
		_, hasAdditional := t["additionalProperties"]
		preserve, _ := t["x-kubernetes-preserve-unknown-fields"].(bool)
		if hasProps && !hasAdditional && !preserve {
			out["additionalProperties"] = false
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, c := range t {
			out[i] = strict(c)
		}
		return out
	}
	return v
}
