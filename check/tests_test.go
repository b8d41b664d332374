package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/internal/testenv"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/project"
	"github.com/kmodtest/kmodtest/runresults"
	"github.com/kmodtest/kmodtest/verdict"
	"github.com/kmodtest/kmodtest/vm"
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
	rows := testRows(rep, []string{"load/m", "test/ok", "test/bad", "test/bad/sub"}, "/tmp/g", newTestRow)
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
// failure, and a row of its own), a static C program, and a KUnit
// suite, skipped on 6.1, which has no KUnit. Each row is a
// subtest here, as go test shows them.
func TestFixtureTests(t *testing.T) {
	rep, _, k := checkFixture(t, "tests")
	dir := t.TempDir()
	if err := rep.WriteResults(t.Context(), Options{Kernels: []kernels.Kernel{k}}, dir); err != nil {
		t.Fatal(err)
	}
	ktapText, err := os.ReadFile(filepath.Join(dir, runresults.KTAPFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("results.ktap:\n%s", ktapText)
	if !strings.Contains(string(ktapText), "# Subtest: 6.1 test/ktap/answer") {
		t.Errorf("results.ktap has no test/ktap/answer")
	}
	want := map[string]struct{ state, why string }{
		"test/pass":             {StatePass, ""},
		"test/skip":             {StateSkip, "exit status 77 (skip)"},
		"test/fail":             {StateFail, "exit status 3\noutput (last lines):\n"},
		"test/ktap":             {StateFail, "KTAP: 1 of 2 tests failed: answer"},
		"test/ktap/module-live": {StatePass, ""},
		"test/ktap/answer":      {StateFail, "answer: want 41, got 42 (wrong on purpose)"},
		"test/c-sysfs":          {StatePass, ""},
		// Debian's kernels have no KUnit: the suite is skipped, saying why.
		"kunit/testee": {StateSkip, "no KUnit results: the kernel lacks CONFIG_KUNIT_DEBUGFS"},
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

// TestStretchForTests: a test longer than the host's silence limit is
// not taken for a hung guest, and the guest's time limit covers every
// test.
func TestStretchForTests(t *testing.T) {
	vcfg := vm.Config{Timeout: 240 * time.Second, StepTimeout: 90 * time.Second}
	stretchForTests(&vcfg, []contract.ProjectCommand{{Name: "long", TimeoutMS: 300_000}, {Name: "default"}}, 2)
	if want := 240*time.Second + 2*(300+60)*time.Second + 2*contract.ProjectTestGrace; vcfg.Timeout != want {
		t.Errorf("timeout %s, want %s", vcfg.Timeout, want)
	}
	if want := 600*time.Second + contract.ProjectTestGrace + testSilenceMargin; vcfg.StepTimeout != want {
		t.Errorf("silence limit %s, want %s", vcfg.StepTimeout, want)
	}
}

// TestBuildTestsFailure: a Go test program that does not build fails
// its test's row, and every test of the package, with the compiler's
// lines; it is not sent to the guest.
func TestBuildTestsFailure(t *testing.T) {
	testenv.NeedTool(t, "go")
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":          "module broken\n\ngo 1.21\n",
		"cmd/bad/main.go": "package main\n\nfunc main() { undefinedCall() }\n",
	}
	for name, text := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := &project.Project{Dir: dir, Tests: []project.Test{
		{Name: "one", Go: "./cmd/bad", Run: []string{"bad"}},
		{Name: "two", Go: "./cmd/bad", Run: []string{"bad", "x"}},
	}}
	newTestRow := func(name string) Row { return newRow(kernels.Kernel{Name: "6.1"}, "6.1.0-57-amd64", name) }
	got, err := buildTests(t.Context(), p, "amd64", t.TempDir(), newTestRow)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.commands) != 0 || len(got.files) != 0 || len(got.failed) != 2 {
		t.Fatalf("%d commands, %d files, %d failed rows; want 0, 0, 2", len(got.commands), len(got.files), len(got.failed))
	}
	why := strings.Join(got.failed[1].Why["tests"], "\n")
	if got.failed[1].Module != "test/two" || got.failed[1].States["tests"] != StateFail || !strings.Contains(why, "undefined: undefinedCall") || !strings.Contains(why, "go build") {
		t.Errorf("row %s: %s %q", got.failed[1].Module, got.failed[1].States["tests"], why)
	}
}
