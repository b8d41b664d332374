package vmtests

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/harness"
)

// TestModule runs the real module on every selected kernel and profile.
func TestModule(t *testing.T) {
	// Start every kernel's fetch and build at once: downloads are network
	// bound and should not wait for -parallel slots.
	for _, tg := range env.Targets {
		env.Prepare(t.Context(), tg.Kernel, "")
	}
	go env.BuildBaseImages() // builds while kernels download
	for _, tg := range harness.SlowestFirst(env.Targets) {
		t.Run(tg.Name(), func(t *testing.T) {
			t.Parallel()
			runTarget(t, tg, filepath.Join(env.Artifacts, tg.Name()))
		})
	}
}

// bootTarget builds, boots and judges one job of test t, failing t when
// the harness itself cannot go on.
func bootTarget(t *testing.T, j harness.Job) *harness.Outcome {
	t.Helper()
	test := t.Name()
	j.Rerun = func(step string) string { return env.RerunLine(test, step) }
	out, err := env.BootTarget(t.Context(), j)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// runTarget runs one target and asserts the build and every step as
// subtests of t.
func runTarget(t *testing.T, tg harness.Target, dir string) {
	t.Helper()
	out := bootTarget(t, harness.Job{Target: tg, Dir: dir})
	t.Run(harness.StepBuild, func(t *testing.T) {
		if out.Build != nil {
			t.Fatalf("%v", out.Build)
		}
		for _, w := range out.Warnings {
			t.Errorf("compiler warning: %s", w)
		}
	})
	if out.Build != nil {
		return
	}
	if b := out.Report.Boot; b.Failed() {
		// One failure for the boot, not one per step it kept from running.
		t.Run(b.Name, func(t *testing.T) {
			t.Errorf("%s did not boot:\n%s", tg.Name(), harness.FailureText(b, out.Boot, out.Result.Output))
		})
		return
	}
	t.Logf("guest kernel %s, boot %.1fs (%s)", out.Report.Kernel, out.Result.Boot.Seconds(), env.Accel)
	for _, s := range append(out.Report.Steps, out.Report.Log) {
		t.Run(s.Name, func(t *testing.T) {
			switch s.Status {
			case contract.StatusFail:
				t.Errorf("step %s failed on %s:\n%s", s.Name, tg.Name(), harness.FailureText(s, out.Boot, out.Result.Output))
			case contract.StatusSkip:
				t.Skip(strings.Join(s.Reasons, "; "))
			}
		})
	}
	if out.Coverage != nil {
		// Every line of the module runs in some step, or
		// kmod/unreachable.txt says why no test can reach it.
		t.Run("every-line-run", func(t *testing.T) {
			for _, gap := range out.CoverageGaps {
				t.Error(gap)
			}
		})
	}
	if out.StepCoverage != nil || out.StepCoverageErr != nil {
		// A module built with gcov: what each step ran must be there and
		// plausible (the reply step builds a reply, rmmod unloads).
		t.Run("step-coverage", func(t *testing.T) {
			if out.StepCoverageErr != nil {
				t.Fatalf("no per-step coverage: %v", out.StepCoverageErr)
			}
			for _, p := range harness.StepCoverageProblems(out.StepCoverage, out.Coverage, out.Report) {
				t.Error(p)
			}
			t.Logf("per-step coverage: %s", out.StepCoverage.Text)
		})
	}
}
