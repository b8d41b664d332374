package testcmd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/ktap"
)

func sh(name, script string) Command {
	return Command{Name: name, Args: []string{"/bin/sh", "-c", script}}
}

func TestRunExitStatus(t *testing.T) {
	tests := []struct {
		cmd            Command
		status, reason string
		code           int
	}{
		{sh("pass", "echo hello"), StatusPass, "", 0},
		{sh("skip", "echo no device >&2; exit 77"), StatusSkip, "exit status 77 (skip)", 77},
		{sh("fail", "echo bad; exit 3"), StatusFail, "exit status 3", 3},
		{sh("signal", "kill -TERM $$"), StatusFail, "signal: terminated", -1},
		{Command{Name: "missing", Args: []string{"kmodtest-no-such-program"}}, StatusFail, `exec: "kmodtest-no-such-program": executable file not found in $PATH`, -1},
		{Command{Name: "empty"}, StatusFail, "no command: give the test's program and its arguments", -1},
	}
	for _, tt := range tests {
		t.Run(tt.cmd.Name, func(t *testing.T) {
			r := Run(context.Background(), tt.cmd)
			if r.Status != tt.status || r.Reason != tt.reason || r.ExitCode != tt.code {
				t.Errorf("got %s %q exit %d, want %s %q exit %d", r.Status, r.Reason, r.ExitCode, tt.status, tt.reason, tt.code)
			}
		})
	}
}

// A failed command keeps the last lines of its output, stderr's too.
func TestRunKeepsTheOutputsTail(t *testing.T) {
	r := Run(context.Background(), sh("many", `i=1; while [ $i -le 40 ]; do echo "line $i"; i=$((i+1)); done; echo "error: it broke"; printf "no newline"; exit 1`))
	if len(r.Output) != TailLines {
		t.Fatalf("kept %d lines, want %d: %q", len(r.Output), TailLines, r.Output)
	}
	if got, want := r.Output[len(r.Output)-2:], []string{"error: it broke", "no newline"}; !reflect.DeepEqual(got, want) {
		t.Errorf("last lines %q, want %q", got, want)
	}
	if r.Output[0] != "line 13" {
		t.Errorf("first kept line %q, want line 13", r.Output[0])
	}
	r = Run(context.Background(), sh("stderr", "echo oops >&2; exit 1"))
	if want := []string{"oops"}; !reflect.DeepEqual(r.Output, want) {
		t.Errorf("stderr: output %q, want %q", r.Output, want)
	}
}

// A timeout kills the command and its children, and says so.
func TestRunTimeout(t *testing.T) {
	c := sh("hang", "sleep 30 & sleep 30; echo never")
	c.Timeout = 300 * time.Millisecond
	start := time.Now()
	r := Run(context.Background(), c)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %s: the children kept it waiting", d)
	}
	if r.Status != StatusFail || r.Reason != "timed out after 300ms: killed" {
		t.Errorf("got %s %q, want a failure saying it timed out", r.Status, r.Reason)
	}
}

func ktapCmd(name, file string, exit int) Command {
	c := sh(name, "cat ../../ktap/testdata/"+file+"; exit "+string(rune('0'+exit)))
	c.KTAP = true
	return c
}

func TestRunKTAP(t *testing.T) {
	tests := []struct {
		cmd            Command
		status, reason string
		subtests       int
	}{
		{ktapCmd("kselftest", "kselftest-runner.tap", 0), StatusPass, "", 2},
		{ktapCmd("example", "ktap-rst-example.ktap", 0), StatusFail, "KTAP: 1 of 6 tests failed: main_test/example_test_3/test_2", 1},
		{ktapCmd("exit-wins", "ktap-rst-example.ktap", 1), StatusFail, "exit status 1", 1},
		{ktapCmd("skip-wins", "kselftest-runner.tap", 7), StatusFail, "exit status 7", 2},
		{func() Command {
			c := sh("all-skipped", "echo 'TAP version 13'; echo 1..1; echo 'ok 1 x # SKIP no hw'")
			c.KTAP = true
			return c
		}(), StatusSkip, "KTAP: every test skipped", 1},
		{func() Command {
			c := sh("crashed", "printf 'KTAP version 1\\n1..3\\nok 1 a\\n'")
			c.KTAP = true
			return c
		}(), StatusFail, "KTAP: top level: plan 1..3 but 1 result line(s)", 1},
		{func() Command { c := sh("no-ktap", "echo all good"); c.KTAP = true; return c }(), StatusFail, "the test is marked ktap but printed no KTAP on stdout", 0},
	}
	for _, tt := range tests {
		t.Run(tt.cmd.Name, func(t *testing.T) {
			r := Run(context.Background(), tt.cmd)
			if r.Status != tt.status || !strings.HasPrefix(r.Reason, tt.reason) {
				t.Errorf("got %s %q, want %s %q", r.Status, r.Reason, tt.status, tt.reason)
			}
			if got := len(r.Subtests()); got != tt.subtests {
				t.Errorf("%d subtests, want %d", got, tt.subtests)
			}
		})
	}
}

// Stderr is no KTAP: only stdout is parsed.
func TestRunKTAPReadsStdoutOnly(t *testing.T) {
	c := sh("stderr", "echo 'not ok 1 noise' >&2; echo 'KTAP version 1'; echo 1..1; echo 'ok 1 real'")
	c.KTAP = true
	r := Run(context.Background(), c)
	if r.Status != StatusPass || len(r.KTAP.Tests) != 1 || r.KTAP.Tests[0].Name != "real" {
		t.Errorf("got %s %q, tests %+v", r.Status, r.Reason, r.KTAP.Tests)
	}
}

func TestReadKUnit(t *testing.T) {
	got, err := ReadKUnit("testdata/kunit")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "base64" || got[1].Name != "sysctl_test" {
		t.Fatalf("suites %+v, want base64 and sysctl_test", got)
	}
	b64 := got[0]
	if b64.Status != StatusPass || len(b64.Subtests()) != 4 || b64.Subtests()[0].Name != "base64_performance_tests" {
		t.Errorf("base64: %s %q, subtests %+v; want a pass with its 4 cases", b64.Status, b64.Reason, b64.Subtests())
	}
	sys := got[1]
	if sys.Status != StatusFail || sys.Reason != "KUnit: 1 of 3 tests failed: sysctl_test/sysctl_test_dointvec_table_len_is_zero" {
		t.Errorf("sysctl_test: %s %q", sys.Status, sys.Reason)
	}
	failed := sys.Subtests()[2]
	if want := "Expected 1 + 1 == 3, but"; !strings.Contains(strings.Join(failed.Diagnostics, "\n"), want) {
		t.Errorf("the failed case's diagnostics %q lack %q", failed.Diagnostics, want)
	}
}

func TestReadKUnitMissing(t *testing.T) {
	if _, err := ReadKUnit(filepath.Join(t.TempDir(), "kunit")); !errors.Is(err, ErrNoKUnit) {
		t.Errorf("ReadKUnit(no dir) = %v, want ErrNoKUnit", err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty", "results"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadKUnit(dir, "empty", "mysuite")
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Status != StatusFail || !strings.Contains(got[0].Reason, "is empty: the suite has not run") {
		t.Errorf("empty: %s %q", got[0].Status, got[0].Reason)
	}
	if got[1].Status != StatusFail || !strings.Contains(got[1].Reason, `no KUnit suite "mysuite"`) {
		t.Errorf("mysuite: %s %q", got[1].Status, got[1].Reason)
	}
}

// A Result crosses from the guest to the host as JSON: its KTAP tree
// comes back whole.
func TestResultJSON(t *testing.T) {
	r := Run(context.Background(), ktapCmd("example", "ktap-rst-example.ktap", 0))
	var walked []string
	r.KTAP.Walk(func(path []string, tt *ktap.Test) { walked = append(walked, strings.Join(path, "/")+" "+tt.Status) })
	back := roundTripJSON(t, r)
	var again []string
	back.KTAP.Walk(func(path []string, tt *ktap.Test) { again = append(again, strings.Join(path, "/")+" "+tt.Status) })
	if !reflect.DeepEqual(walked, again) || back.Status != r.Status || back.Duration != r.Duration {
		t.Errorf("after JSON: %+v\nwant %+v", back, r)
	}
}
