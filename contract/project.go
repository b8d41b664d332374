package contract

import "time"

// A ProjectJob makes the prober check a module project's modules with
// generic steps, knowing nothing of what they do (kmodtest check; see
// docs/projects.md), instead of NetlinkGreetings' steps. It is
// Config.Project.
type ProjectJob struct {
	// Deps are the kernel's own modules the project's depend on, as
	// paths in the guest, in load order (each after those it needs). A
	// dependency the kernel already has is fine.
	Deps []string `json:"deps,omitempty"`
	// Modules are the project's modules, in load order.
	Modules []ProjectModule `json:"modules"`
	// Tests are the project's own test commands, run once every module
	// is loaded (after the last module's reload step, before the
	// cleanup steps), in order.
	Tests []ProjectCommand `json:"tests,omitempty"`
	// KUnit names the KUnit suites whose results the prober reads from
	// debugfs after Tests, each a step KUnitStep(suite).
	KUnit []string `json:"kunit,omitempty"`
}

// A ProjectCommand is one of a project's test commands in the guest
// (project.Test): exit 0 passes, 77 skips, anything else fails.
type ProjectCommand struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
	// KTAP says the command prints KTAP on stdout: each test line is
	// reported as a step TestStep(name)/subtest.
	KTAP bool `json:"ktap,omitempty"`
	// TimeoutMS bounds the command; 0 is guest/testcmd's default.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// ProjectTestBin is the guest directory holding the test programs the
// host built for a project (its Go and C tests); it is first on the
// test commands' PATH.
const ProjectTestBin = "/kmodtest/bin"

// ProjectTestPath is the PATH the project's test commands run with.
const ProjectTestPath = ProjectTestBin + ":/bin:/bbin:/ubin:/usr/bin:/sbin:/usr/sbin"

// ProjectTestGrace is how much longer than its command's timeout a test
// step may take before the prober abandons it: the command is killed at
// its own timeout, and judging its KTAP takes a moment.
const ProjectTestGrace = 10 * time.Second

// TestStep names the step of the project's test name; a KTAP subtest
// of it is TestStep(name)+"/"+subtest.
func TestStep(name string) string { return ProjectTests + "/" + name }

// KUnitStep names the step of a KUnit suite; its cases are
// KUnitStep(suite)+"/"+case.
func KUnitStep(suite string) string { return ProjectKUnit + "/" + suite }

// HasTests reports whether the job runs tests after loading its
// modules: then every module stays loaded for them, the last one too.
func (j ProjectJob) HasTests() bool { return len(j.Tests) > 0 || len(j.KUnit) > 0 }

// A ProjectModule is one module of a project, in the guest.
type ProjectModule struct {
	// Name is the name the kernel knows it by (/sys/module/NAME).
	Name string `json:"name"`
	// Path is its file in the guest.
	Path string `json:"path"`
	// Params are its parameter sets (project.ParamSet).
	Params []ProjectParams `json:"params,omitempty"`
}

// ProjectParams is one parameter set: insmod's arguments, and whether
// the module must refuse them.
type ProjectParams struct {
	Name    string   `json:"name"`
	Args    []string `json:"args,omitempty"`
	Refused bool     `json:"refused,omitempty"`
}

// DefaultArgs are the arguments the load, reload and cleanup steps load
// m with: its first set the module must accept, or none.
func (m ProjectModule) DefaultArgs() []string {
	for _, p := range m.Params {
		if !p.Refused {
			return p.Args
		}
	}
	return nil
}

// The kinds of project steps. Each step but ProjectDeps is named
// KIND/MODULE (ProjectStep). For module i the prober runs load, unload,
// params (when it has sets) and reload with modules 0..i-1 loaded; the
// reload step leaves module i loaded for the modules after it, and the
// cleanup steps unload them, last first, at the end. A job with tests
// leaves the last module loaded too, runs the tests, then cleans up all.
const (
	// ProjectDeps loads Deps.
	ProjectDeps = "deps"
	// ProjectLoad: insmod with DefaultArgs; /sys/module/NAME is live.
	ProjectLoad = "load"
	// ProjectUnload: rmmod; /sys/module/NAME is gone.
	ProjectUnload = "unload"
	// ProjectParamSets: each set loaded and unloaded; a refused set
	// must fail insmod and leave nothing loaded.
	ProjectParamSets = "params"
	// ProjectInitFaults: insmod under fail-nth N = 1, 2, … until a load
	// reaches no fault point; each load fails leaving nothing in
	// /sys/module or loads live and is unloaded. Skipped where the kernel
	// has no fail-nth; kmemleak scans after it where the kernel has it.
	ProjectInitFaults = "init-faults"
	// ProjectReload: ProjectReloads times load and unload.
	ProjectReload = "reload"
	// ProjectCleanup: rmmod of a module reloaded for those after it
	// (or for the tests).
	ProjectCleanup = "cleanup"
	// ProjectLeaks: kmemleak's scan after the cleanup steps, against
	// its baseline before the first module loaded; skipped where the
	// kernel has no kmemleak. Named without a module.
	ProjectLeaks = "kmemleak"
	// ProjectCoverage: the gcov data of the project's modules (every
	// .gcda file in debugfs' gcov tree: only modules built with
	// GCOV_PROFILE=y have one), handed to the host in the end event's
	// Files; skipped where the kernel has no gcov. Named without a
	// module.
	ProjectCoverage = "coverage"
	// ProjectTests: one of the project's test commands (TestStep).
	ProjectTests = "test"
	// ProjectKUnit: one KUnit suite's results (KUnitStep).
	ProjectKUnit = "kunit"
)

// ProjectReloads is how many times the reload step loads and unloads.
const ProjectReloads = 3

// ProjectStepTimeout bounds each project step; below the host's
// SilenceLimit, so that a slow step is reported by the prober.
const ProjectStepTimeout = 60 * time.Second

// ProjectSweepTimeout bounds an init-faults step: a load per fault
// point, a few hundred on a debug kernel. The prober reports progress
// meanwhile, so the host does not take it for silence.
const ProjectSweepTimeout = 180 * time.Second

// ProjectStep names the step kind of module.
func ProjectStep(kind, module string) string { return kind + "/" + module }

// Steps lists the job's steps in the order the prober runs them: the
// host judges these names, and the subtests of tests that print KTAP
// (known only once they ran) after their test's step.
func (j ProjectJob) Steps() []string {
	var steps []string
	if len(j.Deps) > 0 {
		steps = append(steps, ProjectDeps)
	}
	for _, m := range j.Modules {
		steps = append(steps, ProjectStep(ProjectLoad, m.Name), ProjectStep(ProjectUnload, m.Name))
		if len(m.Params) > 0 {
			steps = append(steps, ProjectStep(ProjectParamSets, m.Name))
		}
		steps = append(steps, ProjectStep(ProjectInitFaults, m.Name), ProjectStep(ProjectReload, m.Name))
	}
	for _, t := range j.Tests {
		steps = append(steps, TestStep(t.Name))
	}
	for _, s := range j.KUnit {
		steps = append(steps, KUnitStep(s))
	}
	for i := j.LastCleanup(); i >= 0; i-- {
		steps = append(steps, ProjectStep(ProjectCleanup, j.Modules[i].Name))
	}
	return append(steps, ProjectLeaks, ProjectCoverage)
}

// LastCleanup is the index of the last module a cleanup step unloads:
// the one before the last, or the last when tests ran with it loaded.
func (j ProjectJob) LastCleanup() int {
	if j.HasTests() {
		return len(j.Modules) - 1
	}
	return len(j.Modules) - 2
}
