// Package testenv says, in one place for every package's tests, what a
// test needs from the machine it runs on, and skips with the reason and
// the switch that turns it on when the machine does not give it.
//
// # Switches
//
//   - go test ./vmtests boots VMs by default: it is the main job.
//   - Every other test that boots VMs or fetches kernels (kmodtest watch
//     and shell, the kernels integration test, the boot-versus-restore
//     benchmark) runs only with KMODTEST_TOOL_TESTS=1; make test and CI's
//     full run set it. go test ./... without it boots no VM outside
//     vmtests/.
//   - KMODTEST_SKIP_VM=1 turns every VM test off, vmtests/ included (a
//     dry run that still checks the options): CI's unit job sets it.
//   - -short skips the tests that run a child go test (a few seconds
//     each).
//
// A test that needs a second process of its own (a second builder, a
// process to kill) runs the test binary again with [Helper].
//
// The switches are read when a test asks, never at init.
package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The switches of the package comment.
const (
	ToolTestsEnv = "KMODTEST_TOOL_TESTS"
	SkipVMEnv    = "KMODTEST_SKIP_VM"
)

// VMsOff reports whether KMODTEST_SKIP_VM=1 turned every VM test off.
func VMsOff() bool { return os.Getenv(SkipVMEnv) == "1" }

// NeedVMs skips tb unless VM tests outside vmtests/ are on
// (KMODTEST_TOOL_TESTS=1 and not KMODTEST_SKIP_VM=1).
func NeedVMs(tb testing.TB) {
	tb.Helper()
	if VMsOff() {
		tb.Skipf("boots VMs, and %s=1 turns VM tests off", SkipVMEnv)
	}
	if os.Getenv(ToolTestsEnv) != "1" {
		tb.Skipf("boots VMs or fetches kernels: set %s=1 to run it (make test does)", ToolTestsEnv)
	}
}

// NeedTool skips tb unless every tool is on PATH, naming the first
// missing one and the setup command that installs it.
func NeedTool(tb testing.TB, tools ...string) {
	tb.Helper()
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			tb.Skipf("needs %s on PATH (make setup installs the harness's tools): %v", t, err)
		}
	}
}

// NeedRoot skips tb unless it runs as root.
func NeedRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root")
	}
}

// RepoRoot returns the repository's root: the nearest directory above the
// test's working directory (its package) that holds go.mod.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := repoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// GoTest returns `go test args...` to run in dir, as a user's clean
// shell would: without the caller's KMODTEST_ variables, with extra
// ("NAME=value") added. It skips tb under -short.
func GoTest(tb testing.TB, dir string, extra []string, args ...string) *exec.Cmd {
	tb.Helper()
	return Command(tb, dir, extra, "go", append([]string{"test"}, args...)...)
}

// Command returns name args... to run in dir with CleanEnv(extra), for
// a child that itself runs go test (a rerun line, a rerun script). It
// skips tb under -short.
func Command(tb testing.TB, dir string, extra []string, name string, args ...string) *exec.Cmd {
	tb.Helper()
	if testing.Short() {
		tb.Skip("runs go test (skipped under -short)")
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = CleanEnv(extra...)
	return cmd
}

// CleanEnv is this process's environment without any KMODTEST_ variable,
// plus extra: a child go test then sees only what the test chose.
func CleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KMODTEST_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// helperEnv names the test a test binary runs as a helper process.
const helperEnv = "KMODTEST_TEST_HELPER"

// IsHelper reports whether this test binary was started by Helper to run
// the test named name as a helper process (a second builder, a process
// to kill): that test then does the helper's part and returns.
func IsHelper(name string) bool { return os.Getenv(helperEnv) == name }

// Helper returns a command that runs this test binary again, running
// only the test named name, as a helper process (IsHelper(name) is true
// in it), with env ("NAME=value") added to its environment.
func Helper(name string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+name), env...)
	return cmd
}
