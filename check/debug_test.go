package check

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/testenv"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/project"
)

// debugKernel is the matrix's sanitizer kernel (KASAN, kmemleak,
// fail-nth), the one kernel where init-faults and kmemleak run.
const debugKernel = "6.12-debug"

// checkOnDebug checks the project in dir on the debug kernel, skipping
// unless it is cached: building it takes a long while (see
// harness.SelectBuilt and vmtests' -debug-kernel).
func checkOnDebug(t *testing.T, dir string) *Report {
	t.Helper()
	testenv.NeedVMs(t)
	testenv.NeedTool(t, "make", "bash")
	ks, err := Kernels([]string{debugKernel})
	if err != nil {
		t.Fatal(err)
	}
	cacheDir, err := kernels.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	cache := &kernels.Cache{Dir: cacheDir, Logf: t.Logf}
	built, err := cache.SourceCached(t.Context(), ks[0])
	if err != nil {
		t.Fatal(err)
	}
	if !built {
		t.Skipf("the %s kernel is not built in %s: go test ./vmtests -debug-kernel builds it", debugKernel, cacheDir)
	}
	p, err := project.Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Project(t.Context(), Options{Cache: cache, Kernels: ks, Logf: t.Logf, Repo: testenv.RepoRoot(t), Artifacts: artifactsDir(t)}, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", rep)
	return rep
}

// TestFixtureInitLeak: the init-faults sweep fails init's second
// allocation, the error path forgets the first, and kmemleak's scan
// after the sweep fails the load cell, quoting the record and naming
// the fault point.
func TestFixtureInitLeak(t *testing.T) {
	rep := checkOnDebug(t, filepath.Join("testdata", "projects", "init-leak"))
	if len(rep.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rep.Rows))
	}
	row := rep.Rows[0]
	why := strings.Join(row.Why["load"], "\n")
	want := regexp.MustCompile(`(?s)init-faults/init_leak: .*kmemleak: \d+ unreferenced object.*init-faults/init_leak, fault point \d+:\nunreferenced object`)
	if row.States["load"] != StateFail || !want.MatchString(why) {
		t.Errorf("load: %s with\n%s\nwant a failure matching %s", row.States["load"], why, want)
	}
}

// TestFixtureGoodDebug: the reference module passes every cell on the
// debug kernel, init-faults and the kmemleak scan included.
func TestFixtureGoodDebug(t *testing.T) {
	rep := checkOnDebug(t, filepath.Join("testdata", "projects", "good"))
	for _, step := range []string{"build", "modinfo", "load", "unload", "reload"} {
		wantCell(t, rep, step, StatePass, "")
	}
	// The debug kernel builds modules with gcov profiling: the guest run's
	// line coverage of the module's source is noted, its tracefile kept.
	note := regexp.MustCompile(`^coverage: lines [1-9]\d*/\d+ \(.*\), branches .* over the guest's steps and tests: (\S+/coverage\.info)`)
	var m []string
	for _, n := range rep.Rows[0].Notes {
		if m = note.FindStringSubmatch(n); m != nil {
			break
		}
	}
	if m == nil {
		t.Fatalf("no coverage note matching %s in %q", note, rep.Rows[0].Notes)
	}
	if data, err := os.ReadFile(m[1]); err != nil || !strings.Contains(string(data), "SF:") {
		t.Errorf("coverage tracefile %s: %v, %d bytes", m[1], err, len(data))
	}
}
