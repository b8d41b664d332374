package check

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/coverage"
	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/initramfs"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/modinfo"
	"github.com/kmodtest/kmodtest/project"
	"github.com/kmodtest/kmodtest/verdict"
	"github.com/kmodtest/kmodtest/vm"
)

// The guest's steps: one boot per kernel (a saved guest of the session
// layer waits for one module and NetlinkGreetings' steps; a project's
// several modules and their dependencies go in the initramfs instead).
// The prober runs in project mode (contract.ProjectJob) and the host
// judges each step as it judges NetlinkGreetings': the prober's status,
// kernel reports in the step's log window, new taints.

// guestSteps are the table's steps the guest runs, by the step kinds
// behind each: the deps step's failure is every module's load failure,
// a cleanup's is the module's unload failure.
var guestSteps = map[string][]string{
	"load":   {contract.ProjectDeps, contract.ProjectLoad, contract.ProjectInitFaults},
	"params": {contract.ProjectParamSets},
	"unload": {contract.ProjectUnload, contract.ProjectCleanup, contract.ProjectLeaks},
	"reload": {contract.ProjectReload},
}

// A loadedModule is one module of the project as the guest gets it.
type loadedModule struct {
	name string
	ko   string
	info modinfo.Info
	spec *project.Module // nil for a plain Kbuild project's module
	// gcovDir holds the build's .gcno files and sources when it was
	// built with gcov profiling (the debug kernel's GCOV_PROFILE=y).
	gcovDir string
}

// loadOrder returns the modules in load order: the project's order when
// it names its modules, else each module after the project's modules
// it depends on, and by name.
func loadOrder(mods []loadedModule, plan *project.Plan) []loadedModule {
	if plan != nil && plan.Modules != nil {
		var out []loadedModule
		for _, pm := range plan.Modules {
			for _, m := range mods {
				if m.name == pm.Name {
					out = append(out, m)
				}
			}
		}
		return out
	}
	byName := map[string]loadedModule{}
	for _, m := range mods {
		byName[normalName(m.name)] = m
	}
	var out []loadedModule
	seen := map[string]bool{}
	var visit func(m loadedModule)
	visit = func(m loadedModule) {
		if seen[m.name] {
			return
		}
		seen[m.name] = true
		for _, d := range strings.Split(m.info.First("depends"), ",") {
			if dep, ok := byName[normalName(strings.TrimSpace(d))]; ok {
				visit(dep)
			}
		}
		out = append(out, m)
	}
	for _, m := range mods {
		visit(m)
	}
	return out
}

func normalName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// loadInGuest boots one guest of k with the project's modules, runs the
// generic steps and the project's tests, fills the rows' load, params,
// unload and reload cells, and returns a row per test and subtest (see
// tests.go). It returns an error only when the check cannot go on.
func loadInGuest(ctx context.Context, c Options, f *kernels.Fetched, k kernels.Kernel, mods []loadedModule, p *project.Project, plan *project.Plan, rows []Row, logf func(string, ...any)) ([]Row, error) {
	setAll := func(state, why string) {
		for i := range rows {
			rows[i].States["load"] = state
			if why != "" {
				rows[i].Why["load"] = []string{why}
			}
		}
	}
	if c.Repo == "" {
		for i := range rows {
			rows[i].Notes = append(rows[i].Notes, "load: not run: Options.Repo (the kmodtest repository the guest is built from) is not set")
		}
		return nil, nil
	}
	if k.Arch.OrDefault() != arch.AMD64 {
		setAll(StateSkip, "skipped: kmodtest check boots amd64 guests only for now")
		return nil, nil
	}
	mods = loadOrder(mods, plan)
	own := map[string]bool{}
	for _, m := range mods {
		own[normalName(m.name)] = true
	}
	var want []string
	for _, m := range mods {
		for _, d := range strings.Split(m.info.First("depends"), ",") {
			if d = strings.TrimSpace(d); d != "" && !own[normalName(d)] && !slices.Contains(want, d) {
				want = append(want, d)
			}
		}
	}
	if len(want) > 0 && f.Modules == "" {
		setAll(StateSkip, fmt.Sprintf("skipped: the project depends on %s from the kernel, and the cache keeps no modules of %s: "+
			"they are in linux-modules-%s (a download of about 100 MB), which kmodtest does not fetch",
			strings.Join(want, ", "), k.Name, f.Release))
		return nil, nil
	}

	dir, err := runDir(c, k)
	if err != nil {
		return nil, err
	}
	var deps []string
	if len(want) > 0 {
		index, err := modinfo.KernelIndex(f.Modules)
		if err != nil {
			return nil, err
		}
		depDir := filepath.Join(dir, "deps")
		if err := os.MkdirAll(depDir, 0o755); err != nil {
			return nil, fmt.Errorf("kernel modules for the guest: %w", err)
		}
		if deps, err = modinfo.ResolveDepends(index, want, depDir); err != nil {
			setAll(StateFail, err.Error())
			return nil, nil
		}
	}

	job := contract.ProjectJob{}
	var files []initramfs.File
	for _, d := range deps {
		target := initramfs.ModuleDir + "/deps/" + filepath.Base(d)
		files = append(files, initramfs.File{Source: d, Target: target})
		job.Deps = append(job.Deps, target)
	}
	for _, m := range mods {
		target := initramfs.ModuleDir + "/project/" + filepath.Base(m.ko)
		files = append(files, initramfs.File{Source: m.ko, Target: target})
		pm := contract.ProjectModule{Name: normalName(m.name), Path: target}
		if m.spec != nil {
			for _, ps := range m.spec.Params {
				pm.Params = append(pm.Params, contract.ProjectParams{Name: ps.Name, Args: ps.Args, Refused: ps.Refused})
			}
		}
		job.Modules = append(job.Modules, pm)
	}
	newTestRow := func(name string) Row { return newRow(k, f.Release, name) }
	tests, err := buildTests(ctx, p, k.Arch, dir, newTestRow)
	if err != nil {
		return nil, err
	}
	files = append(files, tests.files...)
	job.Tests, job.KUnit = tests.commands, p.KUnit
	steps := job.Steps()

	ib := &initramfs.Builder{RepoDir: c.Repo, CacheDir: c.Cache.Dir, Arch: k.Arch, Logf: logf}
	base, err := ib.Base(ctx)
	if err != nil {
		return nil, err
	}
	image, _, err := c.Cache.BootImage(ctx, f)
	if err != nil {
		return nil, err
	}
	targets, err := harness.Targets([]kernels.Kernel{k})
	if err != nil {
		return nil, err
	}
	// The target's slowdown (a sanitizer kernel's) stretches the step
	// timeouts as for NetlinkGreetings' runs.
	cfg := contract.Config{ResultPort: vm.ResultPort(k.Arch), Slowdown: harness.GuestConfig(targets[0]).Slowdown, Project: &job}
	initrd := filepath.Join(dir, "initramfs.cpio")
	if err := initramfs.Compose(initrd, base.Path, cfg, files); err != nil {
		return nil, fmt.Errorf("compose the guest's initramfs: %w", err)
	}
	accel, _ := harness.DetectAccel(ctx, vm.QEMUBinary(k.Arch))
	vcfg := harness.VMConfig(targets[0], accel, 0)
	vcfg.Kernel, vcfg.Initramfs, vcfg.Dir = image, initrd, dir
	stretchForTests(&vcfg, job.Tests, cfg.Slowdown)
	logf("check: load %s in a guest of %s (%d steps)", strings.Join(moduleNamesOf(mods), ", "), k.Name, len(steps))
	start := time.Now()
	run, err := vm.Boot(ctx, vcfg)
	if err != nil {
		return nil, fmt.Errorf("boot %s: %w", k.Name, err)
	}
	logf("check: guest of %s done in %.1fs", k.Name, time.Since(start).Seconds())
	exit := ""
	if run.ExitErr != nil {
		exit = run.ExitErr.Error()
	}
	events, pNote := expectProprietary(run.Events, mods)
	steps = withSubtests(steps, run.Events)
	rep := verdict.Judge(verdict.Input{Events: events, Console: run.Console, Hung: run.Hung, HangReason: run.HangReason, Exit: exit}, steps, nil)
	fillGuestCells(rows, rep, dir)
	loadNotes(rows, run.Events)
	covered := coverageNotes(ctx, f, mods, run.Events, dir, rows)
	testRows := append(tests.failed, testRows(rep, steps, dir, newTestRow)...)
	if c.Artifacts == "" && !covered && !slices.ContainsFunc(rows, Row.Failed) && !slices.ContainsFunc(testRows, Row.Failed) {
		// Nothing to look at: do not pile up initramfs images in /tmp.
		if err := os.RemoveAll(dir); err != nil {
			logf("check: remove %s: %v", dir, err)
		}
	}
	if pNote != "" {
		for i := range rows {
			rows[i].Notes = append(rows[i].Notes, pNote)
		}
	}
	return testRows, nil
}

// runDir is the new directory of one kernel's guest run: the console
// log, the initramfs and the dependencies, kept to look at afterwards.
func runDir(c Options, k kernels.Kernel) (string, error) {
	root := c.Artifacts
	if root == "" {
		root = os.TempDir()
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("artifacts directory: %w", err)
	}
	dir, err := os.MkdirTemp(root, "check-"+k.Name+"-")
	if err != nil {
		return "", fmt.Errorf("artifacts directory: %w", err)
	}
	return dir, nil
}

func moduleNamesOf(mods []loadedModule) []string {
	var out []string
	for _, m := range mods {
		out = append(out, m.name)
	}
	return out
}

// proprietaryTaint is the P taint, which loading a module whose license
// is not GPL-compatible sets.
const proprietaryTaint = 1 << 0

// expectProprietary clears the P taint from the events when one of the
// project's modules declares a license that is not GPL-compatible: the
// kernel taints for it on load, as modinfo already noted, and that is
// no failure of the module. The note says so.
func expectProprietary(events []contract.Event, mods []loadedModule) ([]contract.Event, string) {
	var nonGPL []string
	for _, m := range mods {
		if l := m.info.First("license"); !modinfo.GPLCompatible(l) {
			nonGPL = append(nonGPL, fmt.Sprintf("%s (%q)", m.name, l))
		}
	}
	if len(nonGPL) == 0 {
		return events, ""
	}
	out := slices.Clone(events)
	for i := range out {
		out[i].TaintBefore &^= proprietaryTaint
		out[i].TaintAfter &^= proprietaryTaint
	}
	return out, "load: the P taint (proprietary module) is expected for " + strings.Join(nonGPL, ", ") + " and not judged"
}

// fillGuestCells sets each row's guest cells from the verdict: a cell
// fails when a step behind it failed, is skipped when all its steps
// were, and passes otherwise; a step that did not run leaves "-".
func fillGuestCells(rows []Row, rep *verdict.Report, dir string) {
	if rep.Boot.Failed() {
		for i := range rows {
			rows[i].States["load"] = StateFail
			rows[i].Why["load"] = append(append([]string{"the guest failed: "}, rep.Boot.Reasons...), indent(rep.Boot.Evidence)...)
			rows[i].Notes = append(rows[i].Notes, "guest: "+dir)
		}
		return
	}
	for i := range rows {
		row := &rows[i]
		name := normalName(row.Module)
		for cell, kinds := range guestSteps {
			var states []string
			var why []string
			var ms int64
			for _, kind := range kinds {
				stepName := contract.ProjectStep(kind, name)
				if kind == contract.ProjectDeps || kind == contract.ProjectLeaks {
					// Steps of the whole job, named without a module.
					stepName = kind
				}
				s, ok := rep.Step(stepName)
				if !ok {
					continue
				}
				states = append(states, s.Status)
				ms += s.DurationMS
				if s.Status == contract.StatusFail || (s.Status == contract.StatusSkip && kind != contract.ProjectDeps && kind != contract.ProjectInitFaults && kind != contract.ProjectLeaks) {
					for _, r := range s.Reasons {
						why = append(why, stepName+": "+r)
					}
					why = append(why, indent(bounded(s.Evidence))...)
				}
				if s.Status == contract.StatusFail && len(s.Evidence) == 0 && len(s.Kmsg) > 0 {
					// The kernel says why insmod failed ("Unknown
					// symbol ..."); the errno alone does not.
					why = append(why, "    the kernel said:")
					why = append(why, indent(indent(bounded(s.Kmsg)))...)
				}
			}
			switch {
			case len(states) == 0:
				continue
			case slices.Contains(states, contract.StatusFail):
				row.States[cell] = StateFail
			case !slices.Contains(states, contract.StatusPass):
				row.States[cell] = StateSkip
			default:
				row.States[cell] = StatePass
				why = nil
			}
			row.Why[cell] = why
			row.Seconds[cell] = float64(ms) / 1000
		}
		if rep.Log.Failed() && !row.Failed() {
			row.Notes = append(row.Notes, "kernel log: "+strings.Join(rep.Log.Reasons, "; "))
		}
		if row.Failed() {
			row.Notes = append(row.Notes, "guest: "+dir+" (console.log, results.log)")
		}
	}
}

// Failed reports whether a step of the row failed.
func (r Row) Failed() bool {
	for _, s := range r.States {
		if s == StateFail {
			return true
		}
	}
	return false
}

func indent(lines []string) []string {
	var out []string
	for _, l := range lines {
		out = append(out, "    "+l)
	}
	return out
}

// maxWhyLines bounds the kernel lines quoted for one step: the first
// lines of a WARNING say what and where; the guest's console.log has all.
const maxWhyLines = 12

func bounded(lines []string) []string {
	if len(lines) <= maxWhyLines {
		return lines
	}
	return append(slices.Clone(lines[:maxWhyLines]), fmt.Sprintf("... (%d more lines in the guest's console.log)", len(lines)-maxWhyLines))
}

// loadNotes adds what the passed deps step and each module's passed load
// step said (the kernel modules loaded, the device nodes made) to the
// rows' notes.
func loadNotes(rows []Row, events []contract.Event) {
	for i := range rows {
		want := contract.ProjectStep(contract.ProjectLoad, normalName(rows[i].Module))
		for _, e := range events {
			if e.Kind != contract.KindEnd || e.Status != contract.StatusPass || e.Detail == "" {
				continue
			}
			switch e.Step {
			case contract.ProjectDeps:
				rows[i].Notes = append(rows[i].Notes, "deps: "+e.Detail+" (the kernel's own modules)")
			case want:
				rows[i].Notes = append(rows[i].Notes, "load: "+e.Detail)
			}
		}
	}
}

// coverageNotes turns the gcov data the guest's coverage step sent into
// line and branch coverage of the project's sources over the whole guest
// run (every step and test), written to dir/coverage, and notes it on
// every row. It reports whether it wrote anything to keep.
func coverageNotes(ctx context.Context, f *kernels.Fetched, mods []loadedModule, events []contract.Event, dir string, rows []Row) bool {
	var files map[string][]byte
	for _, e := range events {
		if e.Kind == contract.KindEnd && e.Step == contract.ProjectCoverage {
			files = e.Files
		}
	}
	gcovDir := ""
	for _, m := range mods {
		if m.gcovDir != "" {
			gcovDir = m.gcovDir
		}
	}
	if len(files) == 0 || gcovDir == "" {
		return false
	}
	note := "coverage: "
	res, err := coverage.Generate(ctx, coverage.GcovTool(f.Compiler()), gcovDir, files, filepath.Join(dir, "coverage"))
	if err != nil {
		note += err.Error()
	} else {
		note += fmt.Sprintf("%s over the guest's steps and tests: %s", res.Summary(), res.Tracefile)
		if res.HTML != "" {
			note += ", " + res.HTML
		} else if res.HTMLNote != "" {
			note += " (" + res.HTMLNote + ")"
		}
	}
	for i := range rows {
		rows[i].Notes = append(rows[i].Notes, note)
	}
	return err == nil
}
