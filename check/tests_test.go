package check

import (
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/verdict"
)

// TestWithSubtests: a test's KTAP subtests, known from the events, are
// judged right after it.
func TestWithSubtests(t *testing.T) {
	events := []contract.Event{
		{Kind: contract.KindEnd, Step: "test/k"},
		{Kind: contract.KindEnd, Step: "test/k/one"},
		{Kind: contract.KindEnd, Step: "test/k/one/deep"},
		{Kind: contract.KindEnd, Step: "test/kk"},
	}
	got := strings.Join(withSubtests([]string{"reload/m", "test/k", "test/kk", "cleanup/m"}, events), " ")
	if want := "reload/m test/k test/k/one test/k/one/deep test/kk cleanup/m"; got != want {
		t.Errorf("steps %q, want %q", got, want)
	}
}

// TestTestRows: a row per test step, its state in the tests column, a
// failure's reason and output lines as its why.
func TestTestRows(t *testing.T) {
	rep := &verdict.Report{Steps: []verdict.Step{
		{Name: "load/m", Status: contract.StatusPass},
		{Name: "test/ok", Status: contract.StatusPass},
		{Name: "test/bad", Status: contract.StatusFail, Reasons: []string{"exit status 3\noutput (last lines):\nboom"}},
		{Name: "test/bad/sub", Status: contract.StatusSkip, Reasons: []string{"skipped: SKIP no device"}},
	}}
	newTestRow := func(name string) Row { return newRow(kernels.Kernel{Name: "6.1"}, "6.1.0-57-amd64", name) }
	rows := testRows(rep, []string{"load/m", "test/ok", "test/bad", "test/bad/sub"}, newTestRow)
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3: %+v", len(rows), rows)
	}
	for i, want := range []struct{ module, state, why string }{
		{"test/ok", StatePass, ""},
		{"test/bad", StateFail, "exit status 3\noutput (last lines):\nboom"},
		{"test/bad/sub", StateSkip, "skipped: SKIP no device"},
	} {
		r := rows[i]
		if r.Module != want.module || r.States["tests"] != want.state || strings.Join(r.Why["tests"], "\n") != want.why || r.States["load"] != StateNotRun {
			t.Errorf("row %d: %s tests=%s load=%s why %q; want %s %s %q", i, r.Module, r.States["tests"], r.States["load"], r.Why["tests"], want.module, want.state, want.why)
		}
	}
}

// TestFixtureTests: the project's own tests run in the guest with its
// module loaded (after its reload, before its cleanup): a Go test that
// passes, one that skips (exit 77), one that fails (its output's end
// quoted), one printing KTAP with a failing subtest (named in the
// failure, and a row of its own), and a static C program. Each row is a
// subtest here, as go test shows them.
func TestFixtureTests(t *testing.T) {
	rep, _, _ := checkFixture(t, "tests")
	want := map[string]struct{ state, why string }{
		"test/pass":             {StatePass, ""},
		"test/skip":             {StateSkip, "exit status 77 (skip)"},
		"test/fail":             {StateFail, "exit status 3\noutput (last lines):\n"},
		"test/ktap":             {StateFail, "KTAP: 1 of 2 tests failed: answer"},
		"test/ktap/module-live": {StatePass, ""},
		"test/ktap/answer":      {StateFail, "answer: want 41, got 42 (wrong on purpose)"},
		"test/c-sysfs":          {StatePass, ""},
	}
	if len(rep.Rows) != 1+len(want) {
		t.Errorf("%d rows, want the module's and %d tests'", len(rep.Rows), len(want))
	}
	for _, row := range rep.Rows {
		t.Run(row.Module, func(t *testing.T) {
			if row.Module == "testee" {
				for _, step := range []string{"build", "modinfo", "load", "unload", "reload"} {
					if row.States[step] != StatePass {
						t.Errorf("%s: %s %q", step, row.States[step], row.Why[step])
					}
				}
				return
			}
			w, ok := want[row.Module]
			if !ok {
				t.Fatalf("unexpected row %s: %s %q", row.Module, row.States["tests"], row.Why["tests"])
			}
			why := strings.Join(row.Why["tests"], "\n")
			if row.Module == "test/fail" && !strings.Contains(why, "probe: the answer is wrong on purpose") {
				t.Errorf("the failure does not quote the output's end (stdout and stderr): %q", why)
			}
			if row.States["tests"] != w.state || !strings.Contains(why, w.why) {
				t.Errorf("tests: %s %q; want %s saying %q", row.States["tests"], why, w.state, w.why)
			}
		})
	}
}
