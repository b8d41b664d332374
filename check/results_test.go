package check

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/runresults"
)

// TestReportResults: the report as results.json (a target per row, its
// module named, "-" cells left out, a failure's first line the check's
// footnote) and as KTAP, read back by runresults.
func TestReportResults(t *testing.T) {
	k := kernels.Kernel{Name: "6.1"}
	mod := newRow(k, "6.1.0-57-amd64", "testee")
	mod.States["build"], mod.States["modinfo"] = StatePass, StatePass
	bad := newRow(k, "6.1.0-57-amd64", "(all)")
	bad.States["build"] = StateFail
	bad.Why["build"] = []string{"$ make -C KDIR M=DIR", "x.c: In function 'f':", "x.c:3:1: error: expected ';'"}
	test := newRow(k, "6.1.0-57-amd64", "test/ktap/answer")
	test.States["tests"] = StateFail
	test.Why["tests"] = []string{"answer: want 41, got 42"}
	skip := newRow(k, "6.1.0-57-amd64", "kunit/testee")
	skip.States["tests"] = StateSkip
	skip.Why["tests"] = []string{"skipped: no KUnit results"}
	rep := &Report{Project: "tests 1.0", Rows: []Row{mod, bad, test, skip}}
	run := rep.Results(context.Background(), Options{Kernels: []kernels.Kernel{k}})
	dir := t.TempDir()
	if err := run.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	back, err := runresults.Read(filepath.Join(dir, runresults.File))
	if err != nil {
		t.Fatal(err)
	}
	if back.Source != ResultsSource || back.Project != "tests 1.0" || len(back.Targets) != 4 {
		t.Fatalf("read back: source %q project %q, %d targets", back.Source, back.Project, len(back.Targets))
	}
	for i, want := range []struct{ name, module, status string }{
		{"6.1 testee", "testee", "pass"},
		{"6.1 (all)", "(all)", "fail"},
		{"6.1 test/ktap/answer", "test/ktap/answer", "fail"},
		{"6.1 kunit/testee", "kunit/testee", "skip"},
	} {
		got := back.Targets[i]
		if got.Name != want.name || got.Module != want.module || got.Status != want.status || got.Arch != "amd64" {
			t.Errorf("target %d: %s module %s status %s arch %s; want %s %s %s amd64", i, got.Name, got.Module, got.Status, got.Arch, want.name, want.module, want.status)
		}
	}
	if s := back.Targets[0].Steps; len(s) != 2 {
		t.Errorf("testee: %d steps, want build and modinfo only: %+v", len(s), s)
	}
	if f := back.Targets[1].Steps[0].Failure; len(f) == 0 || f[0] != "x.c:3:1: error: expected ';'" {
		t.Errorf("build failure %q: want the compiler error first", f)
	}
	ktapText, err := os.ReadFile(filepath.Join(dir, runresults.KTAPFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Subtest: 6.1 test/ktap/answer", "not ok 1 tests", "# answer: want 41, got 42", "ok 1 tests # SKIP skipped: no KUnit results"} {
		if !bytes.Contains(ktapText, []byte(want)) {
			t.Errorf("results.ktap lacks %q:\n%s", want, ktapText)
		}
	}
	if md := back.Markdown(); !strings.Contains(md, "6.1, build: x.c:3:1: error") && !strings.Contains(md, "6.1 (all), build: x.c:3:1: error") {
		t.Errorf("runresults' Markdown does not quote the compiler error:\n%s", md)
	}
}
