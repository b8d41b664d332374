// Package check builds a module project (package project: a dkms.conf,
// a kmodtest.json, or a plain Kbuild directory) on each selected kernel
// with that kernel's own compiler and checks every module it makes from
// its .modinfo: what `kmodtest check` prints, and what other
// repositories can call from their own tests. It is apart from harness,
// which boots guests: these checks need none.
package check

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/kbuild"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/modinfo"
	"github.com/kmodtest/kmodtest/project"
)

// Steps are the steps of a module project's check, in order. build and
// modinfo run on the host; load, params, unload and reload in a guest
// (load.go); tests is the state of the project's own tests, one row
// each (tests.go), "-" on a module's row.
var Steps = []string{"build", "modinfo", "load", "params", "unload", "reload", "tests"}

// The states of one cell of a project's table.
const (
	StatePass    = "ok"
	StateFail    = "FAIL"
	StateSkip    = "skip"
	StateNotRun  = "-"
	allModules   = "(all)"
	skippedWhy   = "skipped: the project excludes it"
	notRunReason = "not run (a module without parameter sets, a step after a failed build; tests: on the rows test/NAME of the project's tests)"
)

// A Options says where and for which kernels to check projects.
type Options struct {
	Cache *kernels.Cache
	// Kernels are the kernels to build for (see Kernels).
	Kernels []kernels.Kernel
	// Logf receives progress lines; nil drops them.
	Logf func(format string, args ...any)
	// Repo is the kmodtest repository, whose prober the guest's image
	// is built from; empty leaves the steps in a guest "-".
	Repo string
	// Artifacts is where each guest run gets a new directory (its
	// console.log, results.log, initramfs), kept; empty means the
	// system's temporary directory, where only a failed run's is kept.
	Artifacts string
}

// Kernels returns the kernels of the matrix named in names, or,
// with none named, every kernel of the host's architecture that is
// fetched from Debian (not a source-built one such as 6.12-debug).
func Kernels(names []string) ([]kernels.Kernel, error) {
	matrix, err := kernels.LoadMatrix()
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		return kernels.Select(matrix, names)
	}
	var out []kernels.Kernel
	for _, k := range matrix {
		if k.Source == nil && k.Arch.OrDefault() == arch.Host() {
			out = append(out, k)
		}
	}
	return out, nil
}

// A Report is a project's table: kernels x modules x steps.
type Report struct {
	Project string
	Rows    []Row
}

// A Row is one module on one kernel. When the kernel was skipped
// or the build failed, one row stands for every module: Module lists the
// project's modules, or is "(all)" for a plain Kbuild project.
type Row struct {
	Kernel, Release, Module string
	// States holds each step's state (StatePass, ...), by step name.
	States map[string]string
	// Why explains each failed or skipped step; Notes are what passed
	// with something worth saying (warnings, a non-GPL license).
	Why   map[string][]string
	Notes []string
	// Seconds holds how long each step took, where known (the build,
	// the steps in a guest): results.json's steps[].seconds.
	Seconds map[string]float64
}

// Failed reports whether any step of any row failed.
func (r *Report) Failed() bool {
	for _, row := range r.Rows {
		for _, s := range row.States {
			if s == StateFail {
				return true
			}
		}
	}
	return false
}

// Project builds p for each kernel of c with that kernel's own
// compiler and checks each module it makes (vermagic, license, depends)
// from its .modinfo. What the module does is in the report; an error is
// returned only when the check itself cannot go on (a kernel that
// cannot be fetched, a cancelled context).
func Project(ctx context.Context, c Options, p *project.Project) (*Report, error) {
	logf := c.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	rep := &Report{Project: strings.TrimSpace(p.Name + " " + p.Version)}
	for _, k := range c.Kernels {
		rows, err := checkKernel(ctx, c, k, p, logf)
		if err != nil {
			return nil, err
		}
		rep.Rows = append(rep.Rows, rows...)
	}
	return rep, nil
}

// newRow returns a row whose steps have not run.
func newRow(k kernels.Kernel, release, module string) Row {
	r := Row{Kernel: k.Name, Release: release, Module: module, States: map[string]string{}, Why: map[string][]string{}, Seconds: map[string]float64{}}
	for _, s := range Steps {
		r.States[s] = StateNotRun
	}
	return r
}

// checkKernel builds and checks p for one kernel.
func checkKernel(ctx context.Context, c Options, k kernels.Kernel, p *project.Project, logf func(string, ...any)) ([]Row, error) {
	cache := c.Cache
	f, err := cache.Fetch(ctx, k)
	if err != nil {
		return nil, err
	}
	machine := "x86_64"
	if k.Arch.OrDefault() == arch.ARM64 {
		machine = "aarch64"
	}
	plan, err := p.ForKernel(ctx, project.Kernel{Release: f.Release, SourceDir: f.KDIR, Machine: machine})
	if err != nil {
		return nil, err
	}
	label := allModules
	if plan.Modules != nil {
		label = strings.Join(moduleNames(plan.Modules), ",")
	}
	if plan.Excluded != "" {
		row := newRow(k, f.Release, label)
		row.States["build"] = StateSkip
		row.Why["build"] = []string{skippedWhy + ": " + plan.Excluded}
		return []Row{row}, nil
	}
	spec := projectSpec(plan)
	spec.W1 = p.ExtraWarnings
	logf("check %s: build for %s", p.Name, k.Name)
	mb, err := cache.BuildProject(ctx, f, p.Dir, spec)
	var be *kbuild.BuildError
	if errors.As(err, &be) {
		row := newRow(k, f.Release, label)
		row.States["build"] = StateFail
		row.Why["build"] = append([]string{"$ " + be.Cmd}, be.Output...)
		return []Row{row}, nil
	}
	if err != nil {
		return nil, err
	}
	kern, kernNote, err := modinfoKernel(f)
	if err != nil {
		return nil, err
	}
	var own []string
	for _, ko := range mb.Kos {
		own = append(own, strings.TrimSuffix(filepath.Base(ko), ".ko"))
	}
	var rows []Row
	var mods []loadedModule
	for i, ko := range mb.Kos {
		row := newRow(k, f.Release, own[i])
		row.States["build"] = StatePass
		row.Seconds["build"] = mb.Duration.Seconds()
		if len(mb.Warnings) > 0 {
			if p.WarningsFail {
				row.States["build"] = StateFail
				row.Why["build"] = append([]string{"the project fails on warnings (kmodtest.json warnings_fail), and the build warned:"}, mb.Warnings...)
			} else {
				row.Notes = append(row.Notes, fmt.Sprintf("build: %d warnings (kmodtest.json warnings_fail makes them fail):", len(mb.Warnings)))
				row.Notes = append(row.Notes, mb.Warnings...)
			}
		}
		info, err := modinfo.Read(ko)
		if err != nil {
			row.States["modinfo"] = StateFail
			row.Why["modinfo"] = []string{err.Error()}
			rows = append(rows, row)
			continue
		}
		mods = append(mods, loadedModule{name: own[i], ko: ko, info: info, spec: planModule(plan, own[i]), gcovDir: mb.GcovDir})
		res := modinfo.Check(own[i], info, kern, own)
		row.States["modinfo"] = StatePass
		if len(res.Problems) > 0 {
			row.States["modinfo"] = StateFail
			row.Why["modinfo"] = res.Problems
		}
		row.Notes = append(row.Notes, res.Notes...)
		if len(res.Depends) > 0 {
			row.Notes = append(row.Notes, "depends: "+strings.Join(res.Depends, ", "))
		}
		if kernNote != "" && len(res.Depends) > 0 {
			row.Notes = append(row.Notes, kernNote)
		}
		rows = append(rows, row)
	}
	if len(mods) == len(rows) {
		tests, err := loadInGuest(ctx, c, f, k, mods, p, plan, rows, logf)
		if err != nil {
			return nil, err
		}
		rows = append(rows, tests...)
	}
	return rows, nil
}

// planModule is the plan's module named name, or nil.
func planModule(plan *project.Plan, name string) *project.Module {
	if plan == nil {
		return nil
	}
	for i := range plan.Modules {
		if plan.Modules[i].Name == name {
			return &plan.Modules[i]
		}
	}
	return nil
}

// projectSpec is the build a plan describes; a nil plan is a plain
// Kbuild directory's (make -C KDIR M=DIR modules, every .ko).
func projectSpec(plan *project.Plan) kbuild.Spec {
	if plan == nil {
		return kbuild.Spec{}
	}
	spec := kbuild.Spec{Make: plan.Make, Dir: plan.Dir}
	for _, m := range plan.Modules {
		spec.Modules = append(spec.Modules, filepath.Join(m.Location, m.Name+".ko"))
	}
	return spec
}

func moduleNames(mods []project.Module) []string {
	var out []string
	for _, m := range mods {
		out = append(out, m.Name)
	}
	return out
}

// modinfoKernel is what the modinfo checks know of f: the modules its
// Module.symvers names and, when the cache keeps its modules, the files
// of its own package. The note says what could not be checked.
func modinfoKernel(f *kernels.Fetched) (modinfo.Kernel, string, error) {
	k := modinfo.Kernel{Release: f.Release}
	provided, err := modinfo.SymversModules(filepath.Join(f.KDIR, "Module.symvers"))
	if err != nil {
		return k, "", err
	}
	k.Provided = modinfo.Lookup(provided)
	if f.Modules == "" {
		return k, fmt.Sprintf("depends checked against %s's Module.symvers only: the cache keeps no modules of this kernel (its image package has none)", f.Kernel.Name), nil
	}
	packaged, err := modinfo.PackagedModules(f.Modules)
	if err != nil {
		return k, "", err
	}
	k.Packaged = modinfo.Lookup(packaged)
	return k, "", nil
}

// String is the report as a table, one line per kernel and module, with
// the reasons for every failed or skipped step and the notes below it.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "project %s\n\n", r.Project)
	head := append([]string{"kernel", "release", "module"}, Steps...)
	lines := [][]string{head}
	for _, row := range r.Rows {
		line := []string{row.Kernel, row.Release, row.Module}
		for _, s := range Steps {
			line = append(line, row.States[s])
		}
		lines = append(lines, line)
	}
	widths := make([]int, len(head))
	for _, l := range lines {
		for i, c := range l {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, l := range lines {
		for i, c := range l {
			if i == len(l)-1 {
				fmt.Fprintf(&b, "%s\n", c)
			} else {
				fmt.Fprintf(&b, "%-*s  ", widths[i], c)
			}
		}
	}
	fmt.Fprintf(&b, "\n(- : %s)\n", notRunReason)
	for _, row := range r.Rows {
		for _, s := range Steps {
			if len(row.Why[s]) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\n%s %s %s: %s\n", row.Kernel, row.Module, s, row.States[s])
			for _, w := range row.Why[s] {
				fmt.Fprintf(&b, "    %s\n", w)
			}
		}
		if len(row.Notes) > 0 {
			fmt.Fprintf(&b, "\n%s %s: notes\n", row.Kernel, row.Module)
			for _, n := range row.Notes {
				fmt.Fprintf(&b, "    %s\n", n)
			}
		}
	}
	return b.String()
}

// Markdown is the report as a Markdown table a project can paste into
// its README ("tested on"), with a footnote line per failure or skip.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| kernel | release | module | %s |\n", strings.Join(Steps, " | "))
	fmt.Fprintf(&b, "|---|---|---|%s\n", strings.Repeat("---|", len(Steps)))
	var notes []string
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | `%s` | %s |", row.Kernel, row.Release, row.Module)
		for _, s := range Steps {
			st := row.States[s]
			if len(row.Why[s]) > 0 {
				notes = append(notes, fmt.Sprintf("%s, %s, %s: %s", row.Kernel, row.Module, s, firstReason(row.Why[s])))
				st = fmt.Sprintf("%s [%d]", st, len(notes))
			}
			fmt.Fprintf(&b, " %s |", st)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\n%s by [kmodtest](https://github.com/kmodtest/kmodtest) `check`; `-` is %s.\n", r.Project, notRunReason)
	for i, n := range notes {
		fmt.Fprintf(&b, "\n[%d] %s\n", i+1, n)
	}
	return b.String()
}

// kernelHeadline matches the kernel lines that name a failure in the
// guest: a report's headline, or why insmod refused a module.
var kernelHeadline = regexp.MustCompile(`\b(WARNING: CPU|BUG: |Oops|general protection fault|Unknown symbol)`)

// firstReason is the line that says most of a failure: the first
// compiler error in the project's own files (whose paths are relative),
// else the first compiler error, else a kernel headline, else the first
// line after the command.
func firstReason(why []string) string {
	isError := func(w string) bool { return strings.Contains(w, "error:") || strings.HasPrefix(w, "ERROR:") }
	for _, w := range why {
		if isError(w) && !strings.HasPrefix(w, "/") {
			return strings.TrimSpace(w)
		}
	}
	for _, w := range why {
		if isError(w) {
			return strings.TrimSpace(w)
		}
	}
	// A kernel report quoted by a step in the guest: its first line
	// ("------------[ cut here ]") says less than the WARNING or BUG line.
	for _, w := range why {
		if kernelHeadline.MatchString(w) {
			return strings.TrimSpace(w)
		}
	}
	for _, w := range why {
		if !strings.HasPrefix(w, "$ ") {
			return strings.TrimSpace(w)
		}
	}
	return ""
}
