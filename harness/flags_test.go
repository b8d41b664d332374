package harness

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/testenv"
)

// documentedFlags returns the flags vmtests/doc.go lists.
func documentedFlags(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../vmtests/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^//\t-([a-z-]+)`).FindAllStringSubmatch(string(doc), -1) {
		flags = append(flags, m[1])
	}
	return flags
}

// goTestVmtests runs `go test ./vmtests args...` in dry mode
// (KMODTEST_SKIP_VM=1, no other KMODTEST_ variable) and returns its
// output and whether it passed.
func goTestVmtests(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	cmd := testenv.GoTest(t, testenv.RepoRoot(t), []string{testenv.SkipVMEnv + "=1"}, append([]string{"./vmtests", "-count=1"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

// TestEveryDocumentedFlagReachesTheHarness runs go test ./vmtests with a
// bad value for each flag vmtests/doc.go lists: each must be rejected,
// naming the flag. A flag that go test kept for itself (as it does with
// -artifacts since Go 1.25) or dropped would pass instead.
func TestEveryDocumentedFlagReachesTheHarness(t *testing.T) {
	documented := documentedFlags(t)
	var settings []string
	for _, s := range Settings {
		settings = append(settings, s.Flag)
	}
	if !slices.Equal(documented, settings) {
		t.Errorf("vmtests/doc.go lists flags %q, the harness has %q: keep them in sync", documented, settings)
	}
	bad := map[string][]string{
		"kernels":       {"-kernels", "no-such-kernel"},
		"steps":         {"-steps", "bogus"},
		"kernel":        {"-kernel", "/etc/passwd", "-kdir", "/tmp"},
		"kdir":          {"-kdir", "/tmp"},
		"accel":         {"-accel", "hvf"},
		"guest-cpu":     {"-guest-cpu", "NoSuchCPU"},
		"fixtures":      {"-fixtures=maybe"},
		"artifacts-dir": {"-artifacts-dir", "/etc/passwd"},
		"update":        {"-update=maybe"},
		"debug-kernel":  {"-debug-kernel=maybe"},
		"boot":          {"-boot=maybe"},
	}
	for _, flag := range documented {
		t.Run(flag, func(t *testing.T) {
			t.Parallel()
			args, ok := bad[flag]
			if !ok {
				t.Fatalf("no bad value for -%s: add one to this test", flag)
			}
			out, passed := goTestVmtests(t, args...)
			if passed {
				t.Fatalf("go test ./vmtests %s passed: the flag did not reach the harness:\n%s", strings.Join(args, " "), out)
			}
			if !strings.Contains(out, "-"+flag) && !strings.Contains(out, flag) {
				t.Errorf("the error does not name -%s:\n%s", flag, out)
			}
		})
	}
	t.Run("flags after -artifacts-dir", func(t *testing.T) {
		t.Parallel()
		// Issue 8: `-artifacts DIR -steps bogus` said ok.
		if out, passed := goTestVmtests(t, "-artifacts-dir", t.TempDir(), "-steps", "bogus"); passed {
			t.Errorf("-steps bogus after -artifacts-dir was dropped:\n%s", out)
		}
	})
	t.Run("good values", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		out, passed := goTestVmtests(t, "-v", "-kernels", "6.1", "-steps", "full", "-accel", "tcg", "-fixtures", "-artifacts-dir", dir, "-update")
		want := `options ["-kernels" "6.1" "-steps" "full" "-accel" "tcg" "-fixtures" "-artifacts-dir" "` + dir + `" "-update"] select 6.1:`
		if !passed || !strings.Contains(out, want) {
			t.Errorf("want the dry run to report %s, got:\n%s", want, out)
		}
	})
}
