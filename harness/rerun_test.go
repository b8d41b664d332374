package harness

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/testenv"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/vm"
)

// shellWords splits a POSIX shell line made of plain words, single-quoted
// parts and '\” escapes: what shellJoin writes.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune("\"$`*?[]{}()<>|;&!~#", rune(c)):
			t.Fatalf("unquoted shell metacharacter %q in %s", c, line)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unterminated quote in %s", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// goTestArgs parses the words after "go test ./vmtests" as go test and
// the harness would: go test's own flags, then the harness's.
func goTestArgs(t *testing.T, words []string) (env map[string]string, run string, o Options) {
	t.Helper()
	env = map[string]string{}
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		k, v, _ := strings.Cut(words[0], "=")
		env[k] = v
		words = words[1:]
	}
	if len(words) < 3 || words[0] != "go" || words[1] != "test" || words[2] != "./vmtests" {
		t.Fatalf("rerun line does not start with go test ./vmtests: %q", words)
	}
	fs := flag.NewFlagSet("go test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("v", false, "")
	fs.Int("count", 0, "")
	fs.StringVar(&run, "run", "", "")
	o.Register(fs, func(string) string { return "" })
	if err := fs.Parse(words[3:]); err != nil {
		t.Fatalf("go test would not parse the rerun line: %v", err)
	}
	if fs.NArg() != 0 {
		t.Fatalf("rerun line has stray arguments %q: go test would drop the flags after them", fs.Args())
	}
	return env, run, o
}

// runSelects reports whether a -run pattern selects the test named by
// the path elements, the way the testing package matches it: one
// regular expression per level, unanchored.
func runSelects(t *testing.T, pattern string, path ...string) bool {
	t.Helper()
	levels := strings.Split(pattern, "/")
	for i, name := range path {
		if i >= len(levels) {
			return true
		}
		if !regexp.MustCompile(levels[i]).MatchString(name) {
			return false
		}
	}
	return true
}

func testSession(t *testing.T, o Options) *Session {
	t.Helper()
	k61 := kernels.Kernel{Name: "6.1"}
	k612 := kernels.Kernel{Name: "6.12"}
	s := &Session{
		Options: o,
		Repo:    "/src/kmod test",
		Cache:   &kernels.Cache{Dir: "/var/cache/it's here"},
		Targets: []Target{{Kernel: k61, Profile: "default"}, {Kernel: k61, Profile: "hardened"}, {Kernel: k612, Profile: "default"}},
		Accel:   vm.AccelTCG,
	}
	s.Steps, _ = o.StepNames()
	return s
}

// TestRerunLineReproducesFullStepsFailure is issue 8's first defect: a
// -steps full failure printed a rerun line without -steps, which ran no
// test at all and passed.
func TestRerunLineReproducesFullStepsFailure(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "/etc/my matrix.json")
	t.Setenv("KMODTEST_CACHE", "")
	o := Options{Kernels: "6.1,6.12", Steps: StepsFull, Accel: "tcg", Fixtures: true, ArtifactsDir: "/tmp/art dir"}
	s := testSession(t, o)
	line := s.RerunLine("TestModule/6.1", "text-limits")
	t.Logf("rerun line: %s", line)

	env, run, got := goTestArgs(t, shellWords(t, line))
	if env["KMODTEST_MATRIX"] != "/etc/my matrix.json" || env["KMODTEST_CACHE"] != "/var/cache/it's here" {
		t.Errorf("rerun line does not repeat the matrix and cache: %v", env)
	}
	if got.Steps != StepsFull || got.Accel != "tcg" || !got.Fixtures || got.ArtifactsDir != "/tmp/art dir" {
		t.Errorf("rerun line lost settings: got %+v, want steps full, accel tcg, fixtures, artifacts dir", got)
	}
	steps, err := got.StepNames()
	if err != nil || !slices.Contains(steps, "text-limits") {
		t.Fatalf("the rerun would not run text-limits: steps %v, %v", steps, err)
	}
	if got.Kernels != "6.1" {
		t.Errorf("rerun selects kernels %q, want 6.1 alone", got.Kernels)
	}
	if !runSelects(t, run, "TestModule", "6.1", "text-limits") {
		t.Errorf("-run %q does not select TestModule/6.1/text-limits", run)
	}
	for _, other := range [][]string{{"TestModule", "6.12", "text-limits"}, {"TestModule", "6.1-hardened", "text-limits"}, {"TestModule", "6.1", "text-limits-2"}, {"TestFixtures", "6.1"}} {
		if runSelects(t, run, other...) {
			t.Errorf("-run %q also selects %s", run, strings.Join(other, "/"))
		}
	}
}

func TestRerunLineDefaultsAndCustomKernel(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	s := testSession(t, Options{})
	s.Cache.Dir = "/c"
	if got, want := s.RerunLine("TestModule/6.1-hardened", ""), `KMODTEST_CACHE=/c go test ./vmtests -v -count=1 -run '^TestModule$/^6\.1-hardened$' -kernels 6.1 -accel tcg`; got != want {
		t.Errorf("rerun line\n got %s\nwant %s", got, want)
	}

	s = testSession(t, Options{Kernel: "/k/vmlinux", KDIR: "/k"})
	s.Cache.Dir = "/c"
	s.Custom = &kernels.Fetched{Vmlinuz: "/k/vmlinux", KDIR: "/k"}
	if got, want := s.RerunLine("TestModule/custom-6.13", "reply"), `KMODTEST_CACHE=/c go test ./vmtests -v -count=1 -run '^TestModule$/^custom-6\.13$/^reply$' -kernel /k/vmlinux -kdir /k -accel tcg`; got != want {
		t.Errorf("rerun line\n got %s\nwant %s", got, want)
	}
}

// TestRerunScriptRuns runs a rerun.sh (in dry mode) from another
// directory: it must change to the repository and pass the variables of
// its line on to go test (an `exec NAME=value go` would not).
func TestRerunScriptRuns(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	s := testSession(t, Options{Steps: StepsFull})
	s.Repo = testenv.RepoRoot(t)
	s.Cache.Dir = t.TempDir()
	script := filepath.Join(t.TempDir(), "rerun.sh")
	if err := os.WriteFile(script, []byte(s.RerunScript(s.RerunLine("TestModule/6.1", "reply"))), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := testenv.Command(t, t.TempDir(), []string{testenv.SkipVMEnv + "=1"}, script)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `options ["-kernels" "6.1" "-steps" "full" "-accel" "tcg"] select 6.1:`) {
		t.Errorf("rerun.sh: %v\n%s", err, out)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain/path-1.2":  "plain/path-1.2",
		"":                "''",
		"a b":             "'a b'",
		"it's":            `'it'\''s'`,
		`^TestModule$/^6`: `'^TestModule$/^6'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestRerunLineRunsInAShell pastes a rerun line into sh, as a user would,
// in dry mode: go test must accept it and select the kernel and the full
// steps the failing run had.
func TestRerunLineRunsInAShell(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	s := testSession(t, Options{Kernels: "6.1,6.12", Steps: StepsFull, ArtifactsDir: t.TempDir() + "/it's"})
	s.Cache.Dir = t.TempDir()
	line := s.RerunLine("TestModule/6.1", "text-limits")
	cmd := testenv.Command(t, testenv.RepoRoot(t), []string{testenv.SkipVMEnv + "=1"}, "sh", "-c", line)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	want := `options ["-kernels" "6.1" "-steps" "full" "-accel" "tcg" "-artifacts-dir" "` + s.Options.ArtifactsDir + `"] select 6.1:`
	if !strings.Contains(string(out), want) {
		t.Errorf("%s\nwant the dry run to report %s, got:\n%s", line, want, out)
	}
}
