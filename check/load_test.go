package check

import (
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/modinfo"
	"github.com/kmodtest/kmodtest/project"
	"github.com/kmodtest/kmodtest/verdict"
)

// TestLoadOrder: the project's order when it names its modules, else
// each module after the project's modules it depends on.
func TestLoadOrder(t *testing.T) {
	mods := []loadedModule{
		{name: "pair_extra", info: modinfo.Info{"depends": {"videodev,pair-core"}}},
		{name: "pair_core", info: modinfo.Info{"depends": {""}}},
	}
	names := func(ms []loadedModule) string { return strings.Join(moduleNamesOf(ms), " ") }
	if got := names(loadOrder(mods, nil)); got != "pair_core pair_extra" {
		t.Errorf("by depends: %s", got)
	}
	plan := &project.Plan{Modules: []project.Module{{Name: "pair_extra"}, {Name: "pair_core"}}}
	if got := names(loadOrder(mods, plan)); got != "pair_extra pair_core" {
		t.Errorf("the project's order: %s", got)
	}
}

// TestLoadSkippedWithoutKernelModules: a project that needs the kernel's
// modules, on a kernel whose modules the cache does not keep (7.2, 7.3),
// is skipped with the reason, before anything boots.
func TestLoadSkippedWithoutKernelModules(t *testing.T) {
	k := kernels.Kernel{Name: "7.3"}
	rows := []Row{newRow(k, "7.3.4+deb13-amd64", "v4l2loopback")}
	mods := []loadedModule{{name: "v4l2loopback", info: modinfo.Info{"depends": {"videodev"}}}}
	f := &kernels.Fetched{Kernel: k, Release: "7.3.4+deb13-amd64"}
	if _, err := loadInGuest(t.Context(), Options{Repo: "/nonexistent"}, f, k, mods, &project.Project{}, nil, rows, t.Logf); err != nil {
		t.Fatal(err)
	}
	why := strings.Join(rows[0].Why["load"], "\n")
	if rows[0].States["load"] != StateSkip || !strings.Contains(why, "depends on videodev from the kernel") || !strings.Contains(why, "linux-modules-7.3.4+deb13-amd64") {
		t.Errorf("load: %s %q", rows[0].States["load"], why)
	}
}

// TestFillGuestCells: a failed deps step fails every module's load, a
// failed cleanup the module's unload; P is expected for a non-GPL module.
func TestFillGuestCells(t *testing.T) {
	rows := []Row{newRow(kernels.Kernel{Name: "6.1"}, "r", "a"), newRow(kernels.Kernel{Name: "6.1"}, "r", "b")}
	rep := &verdict.Report{Steps: []verdict.Step{
		{Name: "deps", Status: contract.StatusPass},
		{Name: "load/a", Status: contract.StatusPass},
		{Name: "unload/a", Status: contract.StatusPass},
		{Name: "reload/a", Status: contract.StatusPass},
		{Name: "load/b", Status: contract.StatusPass},
		{Name: "unload/b", Status: contract.StatusPass},
		{Name: "reload/b", Status: contract.StatusSkip, Reasons: []string{"skipped: why"}},
		{Name: "cleanup/a", Status: contract.StatusFail, Reasons: []string{"rmmod a: busy"}},
	}}
	fillGuestCells(rows, rep, "/dir")
	if rows[0].States["unload"] != StateFail || !strings.Contains(rows[0].Why["unload"][0], "cleanup/a: rmmod a: busy") {
		t.Errorf("a: unload %s %q", rows[0].States["unload"], rows[0].Why["unload"])
	}
	if rows[1].States["reload"] != StateSkip || rows[1].States["load"] != StatePass || rows[1].States["params"] != StateNotRun {
		t.Errorf("b: %v", rows[1].States)
	}
	// kmemleak's scan is the job's: its failure fails every module's
	// unload (before 2026-12-07 the cell read the deps step instead).
	rows = []Row{newRow(kernels.Kernel{Name: "6.12-debug"}, "r", "a")}
	rep = &verdict.Report{Steps: []verdict.Step{
		{Name: "load/a", Status: contract.StatusPass},
		{Name: "unload/a", Status: contract.StatusPass},
		{Name: "kmemleak", Status: contract.StatusFail, Reasons: []string{"kmemleak: 1 unreferenced object(s)"}},
	}}
	fillGuestCells(rows, rep, "/dir")
	if rows[0].States["unload"] != StateFail || !strings.Contains(strings.Join(rows[0].Why["unload"], "\n"), "kmemleak: kmemleak: 1 unreferenced") {
		t.Errorf("kmemleak failed: unload %s %q", rows[0].States["unload"], rows[0].Why["unload"])
	}

	events := []contract.Event{{TaintBefore: 1<<12 | 1<<13, TaintAfter: 1<<0 | 1<<12 | 1<<13}}
	out, note := expectProprietary(events, []loadedModule{{name: "blob", info: modinfo.Info{"license": {"Proprietary"}}}})
	if contract.NewTaint(out[0].TaintBefore, out[0].TaintAfter) != 0 || !strings.Contains(note, `blob ("Proprietary")`) {
		t.Errorf("P not expected: %+v %q", out[0], note)
	}
	if events[0].TaintAfter&1 == 0 {
		t.Error("expectProprietary changed its input")
	}
}

// TestFirstReasonKernel: the Markdown footnote of a step in the guest
// quotes the WARNING's line, not "cut here", and insmod's refusal.
func TestFirstReasonKernel(t *testing.T) {
	why := []string{
		"unload/warnexit: the kernel reported an error during the step: [    2.35] ------------[ cut here ]------------",
		"    [    2.35] ------------[ cut here ]------------",
		"    [    2.35] warnexit: leaving something behind",
		"    [    2.36] WARNING: CPU: 0 PID: 93 at warnexit.c:15 warnexit_exit+0xc/0x1000 [warnexit]",
	}
	if got := firstReason(why); !strings.HasPrefix(got, "[    2.36] WARNING: CPU: 0 PID: 93 at warnexit.c:15") {
		t.Errorf("firstReason = %q", got)
	}
	why = []string{"load/m: insmod m.ko: no such file or directory", "    the kernel said:", "        m: Unknown symbol absent (err -2)"}
	if got := firstReason(why); got != "m: Unknown symbol absent (err -2)" {
		t.Errorf("firstReason = %q", got)
	}
}
