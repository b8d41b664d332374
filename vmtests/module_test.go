package vmtests

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/probe"
	"github.com/kmodtest/kmodtest/verdict"
)

// TestModule runs the real module on every selected kernel and profile.
func TestModule(t *testing.T) {
	// Start every kernel's fetch and build at once: downloads are network
	// bound and should not wait for -parallel slots.
	for _, tg := range env.targets {
		env.prepare(tg.Kernel, "")
	}
	go env.baseImage() // builds while kernels download
	for _, tg := range env.targets {
		t.Run(tg.Name(), func(t *testing.T) {
			t.Parallel()
			runTarget(t, tg, filepath.Join(env.artifacts, tg.Name()))
		})
	}
}

// outcome is one target's build, boot and verdict.
type outcome struct {
	build    error
	warnings []string
	boot     harness.Boot
	result   *harness.Result
	report   *verdict.Report
}

// probeTarget builds, boots and judges one target and records its row in
// the final report. It fails t only when the harness itself cannot go on;
// what the module did is in the outcome.
func probeTarget(t *testing.T, tg harness.Target, steps []string, patch, dir string, silence time.Duration) outcome {
	t.Helper()
	r := row{name: tg.Name(), steps: map[string]string{}}
	if patch != "" {
		r.fixture = strings.TrimSuffix(filepath.Base(patch), ".patch")
		r.name += " " + r.fixture
	}
	defer func() { env.record(r) }()

	p := env.prepare(tg.Kernel, patch)
	<-p.done
	if p.err != nil {
		r.steps["build"], r.first = probe.StatusFail, "build"
		return outcome{build: p.err}
	}
	r.steps["build"] = probe.StatusPass
	timings := p.kernel.Timings
	r.timings = []time.Duration{timings.Fetch, timings.BuildRoot, p.module.Duration}
	r.cached = fmt.Sprintf("kernel:%v module:%v", timings.Cached, p.module.Cached)

	base, err := env.baseImage()
	if err != nil {
		t.Fatalf("base initramfs: %v", err)
	}
	b := harness.Boot{
		Target:  tg,
		Kernel:  p.kernel,
		Image:   p.image,
		Ko:      p.module.Ko,
		Base:    base.Path,
		Steps:   steps,
		Dir:     dir,
		Accel:   env.accel,
		Rerun:   rerunCommand(t, tg),
		Silence: silence,
	}
	logf("boot %s: starting (%s, %d steps)", r.name, env.accel, len(steps))
	res, err := b.Run(context.Background())
	if err != nil {
		t.Fatalf("%v", err)
	}
	passed := 0
	for _, s := range res.Report.Steps {
		if s.Status == probe.StatusPass {
			passed++
		}
	}
	logf("boot %s: %d of %d steps passed, %.1fs", r.name, passed, len(res.Report.Steps), res.Boot.Seconds())
	var probeTime time.Duration
	for _, s := range res.Report.Steps {
		probeTime += time.Duration(s.DurationMS) * time.Millisecond
	}
	r.timings = append(r.timings, res.Initramfs, res.Boot, probeTime)
	for _, s := range append(res.Report.Steps, res.Report.Log) {
		r.steps[s.Name] = s.Status
		if s.Failed() && r.first == "" {
			r.first = s.Name
		}
	}
	return outcome{warnings: p.module.Warnings, boot: b, result: res, report: res.Report}
}

// runTarget runs one target and asserts the build and every step as
// subtests of t.
func runTarget(t *testing.T, tg harness.Target, dir string) {
	t.Helper()
	out := probeTarget(t, tg, env.steps, "", dir, 0)
	t.Run("build", func(t *testing.T) {
		if out.build != nil {
			t.Fatalf("%v", out.build)
		}
		for _, w := range out.warnings {
			t.Errorf("compiler warning: %s", w)
		}
	})
	if out.build != nil {
		return
	}
	t.Logf("guest kernel %s, boot %.1fs (%s)", out.report.Kernel, out.result.Boot.Seconds(), env.accel)
	for _, s := range append(out.report.Steps, out.report.Log) {
		t.Run(s.Name, func(t *testing.T) {
			switch s.Status {
			case probe.StatusFail:
				t.Errorf("step %s failed on %s:\n%s", s.Name, tg.Name(), harness.Describe(s, out.boot, out.result.Run))
			case probe.StatusSkip:
				t.Skip(strings.Join(s.Reasons, "; "))
			}
		})
	}
}

// rerunCommand returns the one line that reruns this test for this
// kernel, or for one of its steps.
func rerunCommand(t *testing.T, tg harness.Target) func(step string) string {
	test, sub, _ := strings.Cut(t.Name(), "/")
	pattern := fmt.Sprintf("^%s$/^%s$", test, regexp.QuoteMeta(sub))
	fixtures := ""
	if test == "TestFixtures" {
		fixtures = " -fixtures"
	}
	kernel := "-kernels " + tg.Kernel.Name
	if env.custom != nil {
		kernel = fmt.Sprintf("-kernel %s -kdir %s", env.custom.Vmlinuz, env.custom.KDIR)
	}
	return func(step string) string {
		p := pattern
		if step != "" {
			p += "/^" + regexp.QuoteMeta(step) + "$"
		}
		return fmt.Sprintf("go test ./vmtests -v -count=1%s -run '%s' %s", fixtures, p, kernel)
	}
}
