package results

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/runresults"
	"github.com/kmodtest/kmodtest/verdict"
)

// Run returns the merged results as results.json holds them. A shard
// whose directory holds the results.json its run wrote (CI uploads it
// beside go-test.json) gives its targets from there, with every step's
// duration and the kernel's release; any other shard's targets are read
// from its go test output (the subtests of TestModule, the "guest
// kernel" line, the timings files) and have no step durations but the
// build's and the boot's (from the timings files). A
// results.json with no go test output beside it is a shard of its own,
// named after its directory. The tests other than TestModule, and the
// missing shards, are the run's Tests.
func (r *Results) Run() *runresults.Run {
	runs := map[string]*runresults.Run{}
	used := map[string]bool{}
	timings, _ := r.timingsByTarget()
	for _, s := range r.Shards {
		if run, ok := r.Runs[s.Dir]; ok && s.Dir != "" {
			used[s.Dir] = true
			runs[s.Name] = run
			continue
		}
		runs[s.Name] = shardRun(s, timings)
	}
	for dir, run := range r.Runs {
		if !used[dir] {
			runs[shardName(dir+"/go-test.json")] = run
		}
	}
	m := runresults.Merge(runs)
	if len(runs) == 0 {
		m.Date = time.Now().UTC().Truncate(time.Second)
	}
	m.Tests = nil
	for _, o := range r.Others() {
		t := runresults.Test{Name: o.Name, Status: o.Status, Reason: o.Skip}
		m.Tests = append(m.Tests, t)
	}
	for _, name := range r.Missing() {
		m.Tests = append(m.Tests, runresults.Test{Name: name, Status: runresults.StatusFail,
			Reason: "no go test output from this shard: its job failed or was cancelled before go test, or its upload failed"})
	}
	return m
}

// shardRun reads one shard's targets from its go test output.
func shardRun(s *Shard, timings map[string]harness.TargetTiming) *runresults.Run {
	run := &runresults.Run{Schema: runresults.SchemaVersion, Source: "go test -json", Date: s.End.UTC().Truncate(time.Second)}
	for _, t := range s.Tests {
		target, ok := targetOf(t.Name)
		if !ok {
			continue
		}
		tg := runresults.Target{Name: target, Kernel: target, Release: guestKernel(t.Output), Steps: []runresults.Step{}}
		if tt, ok := timings[target]; ok {
			tg.Kernel, tg.Profile, tg.CPU, tg.Guest = tt.Kernel, tt.Profile, tt.CPU, tt.Guest
			tg.RoundTrips = tt.RoundTrips
		}
		for _, c := range s.Tests {
			step, ok := strings.CutPrefix(c.Name, t.Name+"/")
			if !ok || strings.Contains(step, "/") {
				continue
			}
			tg.Steps = append(tg.Steps, goTestStep(step, c))
			if !slices.Contains(run.Steps, step) {
				run.Steps = append(run.Steps, step)
			}
		}
		// The boot has a subtest only when it failed: steps that ran
		// mean it passed.
		if _, ok := tg.Step(verdict.BootStep); !ok && len(tg.Steps) > 1 {
			tg.Steps = slices.Insert(tg.Steps, 1, runresults.Step{Name: verdict.BootStep, Status: runresults.StatusPass})
		}
		if tt, ok := timings[target]; ok {
			setSeconds(&tg, harness.StepBuild, tt.Fetch+tt.BuildRoot+tt.Module)
			setSeconds(&tg, verdict.BootStep, tt.Boot)
		}
		tg.Summarise()
		if t.Failed() && tg.Status != runresults.StatusFail {
			tg.Status = runresults.StatusFail
			why := "the target's test failed, and none of its steps: see the shard's output"
			if t.Status == StatusUnfinished {
				why = "the target's test never finished (a -timeout, a crash or a cancelled job): see the shard's output"
			}
			tg.Failure = runresults.FailureLines(append([]string{why}, lastLines(t.Output, 4)...))
		}
		run.Targets = append(run.Targets, tg)
	}
	if len(run.Targets) > 0 && !slices.Contains(run.Steps, verdict.BootStep) {
		run.Steps = slices.Insert(run.Steps, min(1, len(run.Steps)), verdict.BootStep)
	}
	return run
}

// guestKernelRE matches the line TestModule logs for a target that
// booted: "guest kernel 6.1.0-56-amd64, boot 2.1s (tcg)".
var guestKernelRE = regexp.MustCompile(`guest kernel (\S+), boot `)

func guestKernel(output []string) string {
	for _, l := range output {
		if m := guestKernelRE.FindStringSubmatch(l); m != nil {
			return m[1]
		}
	}
	return ""
}

// goTestStep returns a step from its subtest: a failure's lines from
// its output (the reasons and kernel lines, up to where the artifacts
// and rerun lines begin), a skip's reason (its last line).
func goTestStep(name string, t *Test) runresults.Step {
	st := runresults.Step{Name: name, Status: t.Status}
	lines := make([]string, 0, len(t.Output))
	for _, l := range t.Output {
		lines = append(lines, stripLocation(l))
	}
	switch {
	case t.Failed():
		var failure []string
		for i, l := range lines {
			l = strings.TrimSpace(l)
			if strings.HasPrefix(l, "artifacts: ") {
				break
			}
			if i == 0 && strings.HasSuffix(l, ":") && strings.Contains(l, " failed on ") {
				continue // "step ack failed on 6.1:"
			}
			failure = append(failure, l)
		}
		if t.Status == StatusUnfinished && len(failure) == 0 {
			failure = []string{"the step's test started and never finished: see the shard's output"}
		}
		st.Failure = runresults.FailureLines(failure)
	case t.Status == runresults.StatusSkip && len(lines) > 0:
		st.SkipReason = strings.TrimSpace(lines[len(lines)-1])
	}
	return st
}

// locationRE matches the "file_test.go:69: " that testing puts before
// a test's first line of each message.
var locationRE = regexp.MustCompile(`^\s*[\w.-]+\.go:\d+: `)

func stripLocation(l string) string {
	return locationRE.ReplaceAllString(l, "")
}

// lastLines returns the last n lines of output, without testing's
// file:line prefixes.
func lastLines(output []string, n int) []string {
	var out []string
	for _, l := range output[max(0, len(output)-n):] {
		out = append(out, stripLocation(l))
	}
	return out
}

// setSeconds sets the duration of the target's step name, when it has it.
func setSeconds(t *runresults.Target, name string, sec float64) {
	for i := range t.Steps {
		if t.Steps[i].Name == name {
			t.Steps[i].Seconds = sec
		}
	}
}
