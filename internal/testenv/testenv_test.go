package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestNeedVMsSkipsWithTheSwitch: without the switch a VM test skips and
// the message names KMODTEST_TOOL_TESTS; KMODTEST_SKIP_VM=1 wins over it.
func TestNeedVMsSkipsWithTheSwitch(t *testing.T) {
	for _, tt := range []struct {
		name, on, off string
		skip          bool
		want          string
	}{
		{"off", "", "", true, ToolTestsEnv + "=1"},
		{"on", "1", "", false, ""},
		{"on but skipped", "1", "1", true, SkipVMEnv + "=1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(ToolTestsEnv, tt.on)
			t.Setenv(SkipVMEnv, tt.off)
			var msg string
			skipped := runSkips(func(tb testing.TB) { NeedVMs(tb) }, &msg)
			if skipped != tt.skip || !strings.Contains(msg, tt.want) {
				t.Errorf("NeedVMs: skipped=%v %q, want skipped=%v naming %q", skipped, msg, tt.skip, tt.want)
			}
		})
	}
}

func TestNeedTool(t *testing.T) {
	var msg string
	if !runSkips(func(tb testing.TB) { NeedTool(tb, "sh", "kmodtest-no-such-tool") }, &msg) || !strings.Contains(msg, "kmodtest-no-such-tool") {
		t.Errorf("a missing tool: want a skip naming it, got %q", msg)
	}
	if runSkips(func(tb testing.TB) { NeedTool(tb, "sh") }, &msg) {
		t.Errorf("sh is on PATH, yet: %s", msg)
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testenv", "testenv.go")); err != nil {
		t.Errorf("%s is not this repository's root: %v", root, err)
	}
}

func TestCleanEnv(t *testing.T) {
	t.Setenv("KMODTEST_KERNELS", "6.1")
	env := CleanEnv("KMODTEST_SKIP_VM=1")
	if slices.Contains(env, "KMODTEST_KERNELS=6.1") || !slices.Contains(env, "KMODTEST_SKIP_VM=1") {
		t.Errorf("CleanEnv kept the caller's KMODTEST_ variable or lost the extra one: %q", env)
	}
}

// runSkips runs f on a testing.TB of its own and reports whether f
// skipped, with the message.
func runSkips(f func(testing.TB), msg *string) bool {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	*msg = r.msg
	return r.skipped
}

// recorder is a testing.TB whose Skip and Fatal end the goroutine, as
// the testing package's do, and record the message.
type recorder struct {
	testing.TB
	skipped bool
	msg     string
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) {
	r.skipped, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func TestNeedRoot(t *testing.T) {
	var msg string
	skipped := runSkips(func(tb testing.TB) { NeedRoot(tb) }, &msg)
	if root := os.Geteuid() == 0; skipped == root {
		t.Errorf("NeedRoot as uid %d: skipped=%v (%q)", os.Geteuid(), skipped, msg)
	}
}

func TestHelperRunsOneTest(t *testing.T) {
	if IsHelper("TestHelperRunsOneTest") {
		fmt.Println("HELPER")
		return
	}
	out, err := Helper("TestHelperRunsOneTest").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "HELPER\n") {
		t.Errorf("helper process: %v\n%s", err, out)
	}
}
