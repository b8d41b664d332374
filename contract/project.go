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
}

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
// cleanup steps unload them, last first, at the end.
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
	// ProjectReload: ProjectReloads times load and unload.
	ProjectReload = "reload"
	// ProjectCleanup: rmmod of a module reloaded for those after it.
	ProjectCleanup = "cleanup"
)

// ProjectReloads is how many times the reload step loads and unloads.
const ProjectReloads = 3

// ProjectStepTimeout bounds each project step; below the host's
// SilenceLimit, so that a slow step is reported by the prober.
const ProjectStepTimeout = 60 * time.Second

// ProjectStep names the step kind of module.
func ProjectStep(kind, module string) string { return kind + "/" + module }

// Steps lists the job's steps in the order the prober runs them: the
// host judges these names.
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
		steps = append(steps, ProjectStep(ProjectReload, m.Name))
	}
	for i := len(j.Modules) - 2; i >= 0; i-- {
		steps = append(steps, ProjectStep(ProjectCleanup, j.Modules[i].Name))
	}
	return steps
}
