// Command chartenv checks that the chart configures its binaries with
// settings they have: every KN_* variable a rendered Deployment or Job sets must
// be one its binary reads (a flag's "(env KN_…)" in its -h; a Job's, one
// its command reads), and every key
// of the shared ConfigMap one that some deployed binary reads. A binary
// ignores environment it has no flag for, so a misspelt or renamed
// variable would otherwise be silently without effect.
//
//	chartenv -manifests rendered.yaml -bin DIR
//
// DIR holds the built binaries, named as the images are (councils,
// gateway, …); a Deployment whose binary is not there yet is reported and
// skipped.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Image   string   `yaml:"image"`
					Args    []string `yaml:"args"`
					EnvFrom []struct {
						ConfigMapRef *struct {
							Name string `yaml:"name"`
						} `yaml:"configMapRef"`
					} `yaml:"envFrom"`
					Env []struct {
						Name string `yaml:"name"`
					} `yaml:"env"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func main() {
	manifests := flag.String("manifests", "", "rendered chart (helm template output)")
	bin := flag.String("bin", "", "directory of the built binaries")
	flag.Parse()
	problems, notes, err := check(*manifests, *bin)
	for _, n := range notes {
		fmt.Println("  " + n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chartenv:", err)
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Println("  FAIL: " + p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

// binaryOf is the binary an image runs: ghcr.io/kompetensnav/councils:0.1.0 → councils.
func binaryOf(image string) string {
	name := image[strings.LastIndex(image, "/")+1:]
	name, _, _ = strings.Cut(name, ":")
	return name
}

// workload are the kinds whose containers run a binary of the repository.
var workload = map[string]bool{"Deployment": true, "Job": true}

var envRef = regexp.MustCompile(`\(env (KN_[A-Z0-9_]+)\)`)

// envOf is every KN_* variable the binary reads, from its -h (after the
// container's arguments: a Job's command, say "rotate-pii-key").
func envOf(exe string, args []string) (map[string]bool, error) {
	var out bytes.Buffer
	cmd := exec.Command(exe, append(append([]string{}, args...), "-h")...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = []string{} // its usage must not depend on ours
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && (ee.ExitCode() == 0 || ee.ExitCode() == 2)) {
		return nil, fmt.Errorf("%s %s -h: %w", exe, strings.Join(args, " "), err)
	}
	vars := map[string]bool{}
	for _, m := range envRef.FindAllStringSubmatch(out.String(), -1) {
		vars[m[1]] = true
	}
	if len(vars) == 0 {
		return nil, fmt.Errorf("%s -h names no KN_* variable:\n%s", exe, out.String())
	}
	return vars, nil
}

func check(path, bin string) (problems, notes []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var docs []manifest
	dec := yaml.NewDecoder(f)
	for {
		var m manifest
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		docs = append(docs, m)
	}
	configMaps := map[string]map[string]string{}
	for _, m := range docs {
		if m.Kind == "ConfigMap" {
			configMaps[m.Metadata.Name] = m.Data
		}
	}
	shared := map[string]map[string]bool{} // ConfigMap → its KN_ keys read by some binary
	checked := 0
	// Settings about a service whose binary is not built yet (the gateway's
	// -<svc>-addr for it, say) are expected not to be read yet.
	unbuilt := map[string]bool{}
	for _, m := range docs {
		for _, c := range m.Spec.Template.Spec.Containers {
			if workload[m.Kind] {
				if _, err := os.Stat(filepath.Join(bin, binaryOf(c.Image))); err != nil {
					unbuilt[binaryOf(c.Image)] = true
				}
			}
		}
	}
	about := func(env string) string {
		for svc := range unbuilt {
			if strings.HasPrefix(env, "KN_"+strings.ToUpper(svc)+"_") {
				return svc
			}
		}
		return ""
	}
	for _, m := range docs {
		if !workload[m.Kind] {
			continue
		}
		for _, c := range m.Spec.Template.Spec.Containers {
			name := binaryOf(c.Image)
			exe := filepath.Join(bin, name)
			if _, err := os.Stat(exe); err != nil {
				notes = append(notes, fmt.Sprintf("%s: no binary %q built (not in the repository yet): its settings are not checked", m.Metadata.Name, name))
				continue
			}
			vars, err := envOf(exe, c.Args)
			if err != nil {
				return nil, notes, err
			}
			checked++
			for _, e := range c.Env {
				switch {
				case !strings.HasPrefix(e.Name, "KN_") || vars[e.Name]:
				case about(e.Name) != "":
					notes = append(notes, fmt.Sprintf("%s sets %s, for %s, which is not built yet", m.Metadata.Name, e.Name, about(e.Name)))
				default:
					problems = append(problems, fmt.Sprintf("%s sets %s, which %s does not read", m.Metadata.Name, e.Name, name))
				}
			}
			for _, from := range c.EnvFrom {
				if from.ConfigMapRef == nil {
					continue
				}
				cm := from.ConfigMapRef.Name
				if shared[cm] == nil {
					shared[cm] = map[string]bool{}
				}
				for k := range configMaps[cm] {
					if vars[k] {
						shared[cm][k] = true
					}
				}
			}
		}
	}
	for cm, read := range shared {
		keys := make([]string, 0, len(configMaps[cm]))
		for k := range configMaps[cm] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if strings.HasPrefix(k, "KN_") && !read[k] {
				problems = append(problems, fmt.Sprintf("ConfigMap %s sets %s, which no deployed binary reads", cm, k))
			}
		}
	}
	notes = append(notes, fmt.Sprintf("%d workloads' binaries checked", checked))
	return problems, notes, nil
}
