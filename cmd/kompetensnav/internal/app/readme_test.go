package app_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
)

// readmeCommand is one curl command of a checked README block and the
// status it must answer.
type readmeCommand struct {
	line   int
	text   string
	expect int // 0: any 2xx
}

// readmeCommands extracts the commands of every ```sh block that follows a
// "<!-- readme-check -->" line. A command runs on over lines that end in a
// backslash or sit inside quotes; "# expect NNN" sets the next command's
// status.
func readmeCommands(t *testing.T, path string) []readmeCommand {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out       []readmeCommand
		marked    bool
		inBlock   bool
		expect    int
		cur       strings.Builder
		curLine   int
		openQuote rune
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if !inBlock {
			switch {
			case trimmed == "<!-- readme-check -->":
				marked = true
			case strings.HasPrefix(trimmed, "```sh") && marked:
				inBlock, marked = true, false
			case trimmed != "":
				marked = false
			}
			continue
		}
		if cur.Len() == 0 {
			if trimmed == "```" {
				inBlock = false
				continue
			}
			if code, ok := strings.CutPrefix(trimmed, "# expect "); ok {
				expect, _ = strconv.Atoi(strings.TrimSpace(code))
				continue
			}
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			curLine = n
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		for _, r := range line {
			switch {
			case openQuote == 0 && (r == '\'' || r == '"'):
				openQuote = r
			case r == openQuote:
				openQuote = 0
			}
		}
		if openQuote != 0 || strings.HasSuffix(line, `\`) {
			continue
		}
		cmd := strings.TrimSpace(cur.String())
		cur.Reset()
		if strings.HasPrefix(cmd, "curl ") {
			out = append(out, readmeCommand{line: curLine, text: cmd, expect: expect})
		}
		expect = 0
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReadmeExamples runs the README's checked examples, as written, against
// a fresh all-in-one with the demo data.
func TestReadmeExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is not installed, and CI is set: install it (apt-get install curl)")
		}
		t.Skip("skipped: the README's examples are curl commands and curl is not installed")
	}
	cmds := readmeCommands(t, filepath.Join("..", "..", "..", "..", "README.md"))
	if len(cmds) < 5 {
		t.Fatalf("found %d checked commands in the README; is the <!-- readme-check --> marker gone?", len(cmds))
	}
	a := start(t, testkit.Redis(t), true)
	dir := t.TempDir()
	for _, c := range cmds {
		text := strings.ReplaceAll(c.text, "localhost:8080", a.HTTPAddr)
		body := filepath.Join(dir, "body")
		script := text + fmt.Sprintf(" -o %q -w '%%{http_code}'", body)
		cmd := exec.Command("bash", "-c", script)
		// As the README tells a reader to do with the key the binary prints.
		cmd.Env = append(os.Environ(), "KN_KEY="+a.BootstrapKey)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("README line %d: %v\n%s", c.line, err, c.text)
		}
		status, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		ok := status >= 200 && status < 300
		if c.expect != 0 {
			ok = status == c.expect
		}
		if !ok {
			got, _ := os.ReadFile(body)
			want := "2xx"
			if c.expect != 0 {
				want = strconv.Itoa(c.expect)
			}
			t.Errorf("README line %d answered %d, want %s:\n%s\n%s", c.line, status, want, c.text, got)
		}
	}
}
