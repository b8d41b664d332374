package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/guest/kernelio"
	"golang.org/x/sys/unix"
)

// This file is the prober's project mode (contract.Config.Project):
// generic steps for a module somebody else wrote. It loads, unloads and
// reloads the modules and looks at sysfs; the host judges each step's
// kernel log window and taint as it does NetlinkGreetings' steps.

// runProject runs the job's steps in contract.ProjectJob.Steps' order and
// reports each one.
func runProject(rep *reporter, cfg contract.Config) {
	job := *cfg.Project
	timeout := contract.ProjectStepTimeout * time.Duration(max(cfg.Slowdown, 1))
	start := time.Now()
	first := true
	// leaks is kmemleak's baseline, taken before the first module loads,
	// and the steps' times (nil without kmemleak).
	leaks := newLeakLedger()
	run := func(name string, fn func(ctx context.Context) (string, error)) bool {
		leaks.begin(name)
		d := timeout
		if strings.HasPrefix(name, contract.ProjectInitFaults+"/") {
			d = contract.ProjectSweepTimeout * time.Duration(max(cfg.Slowdown, 1))
		}
		ok := projectStep(rep, name, first, d, fn)
		first = false
		return ok
	}
	// skipWhy, once set, is why the remaining steps cannot run.
	skipWhy := ""
	skip := func(ctx context.Context) (string, error) { return "", skipf("%s", skipWhy) }
	if len(job.Deps) > 0 {
		if !run(contract.ProjectDeps, func(context.Context) (string, error) { return loadDeps(job.Deps) }) {
			skipWhy = "the modules it depends on did not load (see the deps step)"
		}
	}
	loaded := 0 // modules 0..loaded-1 stay loaded for the ones after them
	for i, m := range job.Modules {
		steps := []string{contract.ProjectLoad, contract.ProjectUnload}
		if len(m.Params) > 0 {
			steps = append(steps, contract.ProjectParamSets)
		}
		steps = append(steps, contract.ProjectInitFaults, contract.ProjectReload)
		// Keep the module loaded after its reload for the modules
		// after it, and for the tests.
		last := i == len(job.Modules)-1 && !job.HasTests()
		for _, kind := range steps {
			name := contract.ProjectStep(kind, m.Name)
			if skipWhy != "" {
				run(name, skip)
				continue
			}
			ok := run(name, func(ctx context.Context) (string, error) {
				if kind == contract.ProjectInitFaults {
					return initFaults(ctx, rep, leaks, name, m)
				}
				return projectKind(ctx, kind, m, last)
			})
			switch {
			case !ok && kind == contract.ProjectLoad:
				skipWhy = fmt.Sprintf("%s is not loaded: its load step failed", m.Name)
			case !ok && kind == contract.ProjectReload && !last && !moduleLive(m.Name):
				skipWhy = fmt.Sprintf("%s, which loads before it, is not loaded: its reload step failed", m.Name)
			case ok && kind == contract.ProjectReload && !last:
				loaded = i + 1
			}
		}
	}
	if job.HasTests() {
		testsSkip := skipWhy
		if testsSkip == "" && loaded < len(job.Modules) {
			testsSkip = "not every module is loaded: see the module steps"
		}
		runProjectTests(rep, job, cfg.Slowdown, testsSkip)
	}
	for i := job.LastCleanup(); i >= 0; i-- {
		m := job.Modules[i]
		name := contract.ProjectStep(contract.ProjectCleanup, m.Name)
		if i >= loaded {
			run(name, func(context.Context) (string, error) {
				return "", skipf("%s was not left loaded", m.Name)
			})
			continue
		}
		run(name, func(ctx context.Context) (string, error) { return "", unload(ctx, m.Name) })
	}
	run(contract.ProjectLeaks, func(context.Context) (string, error) { return leaksAfter(leaks) })
	leaks.begin(contract.ProjectCoverage)
	projectStepFiles(rep, contract.ProjectCoverage, false, timeout, projectCoverage)
	rep.done(kernelRelease(), kernelio.ReadTaintOr0(), time.Since(start))
}

// projectKind runs one step kind on module m.
func projectKind(ctx context.Context, kind string, m contract.ProjectModule, last bool) (string, error) {
	switch kind {
	case contract.ProjectLoad:
		before := devNodes()
		if err := load(m, m.DefaultArgs()); err != nil {
			return "", err
		}
		return newDevices(before), nil
	case contract.ProjectUnload:
		return "", unload(ctx, m.Name)
	case contract.ProjectParamSets:
		return paramSets(ctx, m)
	case contract.ProjectReload:
		for n := 1; n <= contract.ProjectReloads; n++ {
			if err := load(m, m.DefaultArgs()); err != nil {
				return "", fmt.Errorf("reload %d of %d: %w", n, contract.ProjectReloads, err)
			}
			if err := unload(ctx, m.Name); err != nil {
				return "", fmt.Errorf("reload %d of %d: %w", n, contract.ProjectReloads, err)
			}
		}
		info := fmt.Sprintf("loaded and unloaded %d times", contract.ProjectReloads)
		if !last {
			if err := load(m, m.DefaultArgs()); err != nil {
				return "", fmt.Errorf("load again for the modules after it: %w", err)
			}
			info += "; loaded again for the modules after it"
		}
		return info, nil
	}
	return "", fmt.Errorf("unknown project step kind %q", kind)
}

// paramSets loads and unloads m with each of its parameter sets.
func paramSets(ctx context.Context, m contract.ProjectModule) (string, error) {
	var done []string
	for _, set := range m.Params {
		err := load(m, set.Args)
		if set.Refused {
			if err == nil {
				_ = unload(ctx, m.Name)
				return "", fmt.Errorf("set %q (%s) is marked refused, but insmod accepted it", set.Name, strings.Join(set.Args, " "))
			}
			if moduleLive(m.Name) || sysfsPresent(m.Name) {
				return "", fmt.Errorf("set %q: insmod failed (%v) but /sys/module/%s is left", set.Name, err, m.Name)
			}
			done = append(done, fmt.Sprintf("%s refused (%v)", set.Name, errnoText(err)))
			continue
		}
		if err != nil {
			return "", fmt.Errorf("set %q: %w", set.Name, err)
		}
		if err := unload(ctx, m.Name); err != nil {
			return "", fmt.Errorf("set %q: %w", set.Name, err)
		}
		done = append(done, set.Name+" loaded and unloaded")
	}
	return strings.Join(done, "; "), nil
}

// errnoText is err's errno name when it has one.
func errnoText(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

// loadDeps loads the kernel's modules the project depends on, in order.
func loadDeps(paths []string) (string, error) {
	var names []string
	for _, p := range paths {
		if err := finit(p, ""); err != nil && !errors.Is(err, unix.EEXIST) {
			return "", fmt.Errorf("insmod %s: %w", p, err)
		}
		names = append(names, strings.TrimSuffix(p[strings.LastIndex(p, "/")+1:], ".ko"))
	}
	return "loaded " + strings.Join(names, ", "), nil
}

// load inserts m with args and checks that sysfs shows it live.
func load(m contract.ProjectModule, args []string) error {
	params := strings.Join(args, " ")
	if err := finit(m.Path, params); err != nil {
		return fmt.Errorf("insmod %s: %w", strings.TrimSpace(m.Path+" "+params), err)
	}
	if !moduleLive(m.Name) {
		return fmt.Errorf("insmod %s succeeded but /sys/module/%s/initstate is not live", m.Path, m.Name)
	}
	return nil
}

// finit loads the module file at path with params.
func finit(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), params, 0)
}

// unload removes the module, retrying while it is busy for a moment
// (a device node just closed), and checks that sysfs lets it go.
func unload(ctx context.Context, name string) error {
	for tries := 1; ; tries++ {
		err := unix.DeleteModule(name, unix.O_NONBLOCK)
		if err == nil {
			break
		}
		if !(errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN)) || ctx.Err() != nil || tries >= 100 {
			return fmt.Errorf("rmmod %s: %w (after %d tries)", name, err, tries)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sysfsPresent(name) {
		return fmt.Errorf("rmmod %s succeeded but /sys/module/%s still exists", name, name)
	}
	return nil
}

// moduleLive reports whether /sys/module/NAME/initstate says live.
func moduleLive(name string) bool {
	state, err := os.ReadFile("/sys/module/" + name + "/initstate")
	return err == nil && strings.TrimSpace(string(state)) == "live"
}

// sysfsPresent reports whether /sys/module/NAME exists.
func sysfsPresent(name string) bool {
	_, err := os.Stat("/sys/module/" + name)
	return err == nil
}

// projectStep runs fn as one step between begin and end events, with the
// step's kernel log window and taints, as runStep does for the
// greeting steps; it reports whether the step passed.
func projectStep(rep *reporter, name string, first bool, timeout time.Duration, fn func(context.Context) (string, error)) bool {
	return projectStepFiles(rep, name, first, timeout, func(ctx context.Context) (string, map[string][]byte, error) {
		info, err := fn(ctx)
		return info, nil, err
	})
}

// projectStepFiles is projectStep for a step that hands files to the
// host (contract.Event.Files) when it passes.
func projectStepFiles(rep *reporter, name string, first bool, timeout time.Duration, fn func(context.Context) (string, map[string][]byte, error)) bool {
	var kernel string
	if first {
		kernel = kernelRelease()
	}
	taintBefore, taintErr := kernelio.ReadTaint()
	rep.begin(name, kernel, taintBefore)
	var notes []string
	if taintErr != nil {
		notes = append(notes, taintErr.Error())
	}
	cursor, err := kernelio.MarkKmsg(contract.KmsgMarker + name)
	if err != nil {
		notes = append(notes, err.Error())
	}
	start := time.Now()
	var files map[string][]byte
	status, detail := executeFor(timeout, func(ctx context.Context) (string, error) {
		info, f, err := fn(ctx)
		files = f
		return info, err
	})
	d := time.Since(start)
	if status != contract.StatusPass {
		files = nil
	}
	var kmsg []string
	if cursor != nil {
		var kerr error
		if kmsg, kerr = cursor.Drain(); kerr != nil {
			notes = append(notes, kerr.Error())
		}
	}
	taintAfter, err := kernelio.ReadTaint()
	if err != nil {
		notes = append(notes, err.Error())
	}
	if len(notes) > 0 {
		detail = join(detail, strings.Join(notes, "; "))
	}
	rep.end(contract.Event{Step: name, Status: status, Detail: detail, Kmsg: kmsg,
		TaintBefore: taintBefore, TaintAfter: taintAfter, DurationMS: d.Milliseconds(), Files: files})
	return status == contract.StatusPass
}

// projectCoverage hands the host the gcov data of the project's modules:
// every .gcda file in debugfs' gcov tree, kept by the kernel across
// rmmod. It skips where the kernel has no gcov, or no module of the
// project was built with gcov profiling.
func projectCoverage(context.Context) (string, map[string][]byte, error) {
	_ = kernelio.MountDebugfs()
	if _, err := os.Stat(kernelio.GcovDir); err != nil {
		return "", nil, skipf("this kernel has no %s (CONFIG_GCOV_KERNEL off): no line coverage", kernelio.GcovDir)
	}
	files, err := kernelio.GcovAll()
	if err != nil {
		return "", nil, fmt.Errorf("read gcov data: %w", err)
	}
	if len(files) == 0 {
		return "", nil, skipf("no module was built with gcov profiling (GCOV_PROFILE=y, the debug kernel's make variable)")
	}
	size := 0
	for _, data := range files {
		size += len(data)
	}
	return fmt.Sprintf("%d .gcda file(s), %d bytes", len(files), size), files, nil
}

// devNodes lists /dev's entries and those of its directories, one level
// down (/dev/video0, /dev/dri/card0).
func devNodes() map[string]bool {
	nodes := map[string]bool{}
	entries, _ := os.ReadDir("/dev")
	for _, e := range entries {
		p := "/dev/" + e.Name()
		nodes[p] = true
		if e.IsDir() {
			sub, _ := os.ReadDir(p)
			for _, s := range sub {
				nodes[p+"/"+s.Name()] = true
			}
		}
	}
	return nodes
}

// newDevices says which device nodes appeared since before: what a
// driver's load made, for the report. devtmpfs makes them as the
// devices register, which may follow insmod by a moment.
func newDevices(before map[string]bool) string {
	var added []string
	for try := 0; try < 5; try++ {
		added = added[:0]
		for p := range devNodes() {
			if !before[p] {
				added = append(added, p)
			}
		}
		if len(added) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(added) == 0 {
		return ""
	}
	slices.Sort(added)
	return "new device nodes: " + strings.Join(added, " ")
}
