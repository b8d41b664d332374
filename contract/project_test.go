package contract

import (
	"strings"
	"testing"
)

// TestProjectJobSteps: each module's steps in order, params only with
// sets, the cleanup of all but the last module, last first, and the
// kmemleak scan at the end.
func TestProjectJobSteps(t *testing.T) {
	job := ProjectJob{Deps: []string{"/x/videodev.ko"}, Modules: []ProjectModule{
		{Name: "a", Params: []ProjectParams{{Name: "two", Args: []string{"n=2"}}}},
		{Name: "b"}, {Name: "c"},
	}}
	want := "deps load/a unload/a params/a init-faults/a reload/a load/b unload/b init-faults/b reload/b load/c unload/c init-faults/c reload/c cleanup/b cleanup/a kmemleak coverage"
	if got := strings.Join(job.Steps(), " "); got != want {
		t.Errorf("steps:\n got %s\nwant %s", got, want)
	}
	refusedFirst := ProjectModule{Params: []ProjectParams{{Args: []string{"n=99"}, Refused: true}, {Args: []string{"n=1"}}}}
	if got := refusedFirst.DefaultArgs(); len(got) != 1 || got[0] != "n=1" {
		t.Errorf("DefaultArgs = %q, want the first set not refused", got)
	}
}

// TestProjectJobStepsWithTests: the tests and KUnit suites run after the
// last module's reload, with every module loaded, and the cleanup
// unloads the last module too.
func TestProjectJobStepsWithTests(t *testing.T) {
	job := ProjectJob{Modules: []ProjectModule{{Name: "a"}, {Name: "b"}},
		Tests: []ProjectCommand{{Name: "ctl"}, {Name: "selftest", KTAP: true}}, KUnit: []string{"b_suite"}}
	want := "load/a unload/a init-faults/a reload/a load/b unload/b init-faults/b reload/b test/ctl test/selftest kunit/b_suite cleanup/b cleanup/a kmemleak coverage"
	if got := strings.Join(job.Steps(), " "); got != want {
		t.Errorf("steps:\n got %s\nwant %s", got, want)
	}
}

// TestInitFaultsInjects: the init-faults steps fail allocations on
// purpose, so the host leaves their allocation-failure dumps out.
func TestInitFaultsInjects(t *testing.T) {
	if !InjectsFaults(ProjectStep(ProjectInitFaults, "vpoll")) {
		t.Error("InjectsFaults(init-faults/vpoll) = false")
	}
	if InjectsFaults(ProjectStep(ProjectLoad, "vpoll")) {
		t.Error("InjectsFaults(load/vpoll) = true")
	}
}
