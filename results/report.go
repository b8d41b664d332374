package results

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/verdict"
	"github.com/kmodtest/kmodtest/vm"
)

// moduleTest is the test whose subtests are targets and their steps.
const moduleTest = "TestModule"

// A Failure is a test that failed or never finished and has no failed
// subtest of its own (the step, not its target and TestModule), or a
// shard whose package failed with no such test.
type Failure struct {
	Shard, Test, Status string
	// Output is what the test printed: the reasons, the kernel's lines,
	// the artifacts directory. For a package it is the package's output.
	Output []string
	// Rerun is the test's rerun line, if it printed one.
	Rerun string
}

// Failures returns the failures of every shard, in shard and start order.
func (r *Results) Failures() []Failure {
	var out []Failure
	for _, s := range r.Shards {
		found := false
		for _, t := range s.Tests {
			if !t.Failed() || hasFailedChild(s, t) {
				continue
			}
			found = true
			out = append(out, Failure{Shard: s.Name, Test: t.Name, Status: t.Status, Output: t.Output, Rerun: rerunLine(t.Output)})
		}
		if !found && s.Failed() {
			for pkg, st := range s.Packages {
				if packageFailed(st) {
					out = append(out, Failure{Shard: s.Name, Test: "package " + pkg, Status: st, Output: s.Output})
				}
			}
		}
	}
	for _, name := range r.Missing() {
		out = append(out, Failure{Shard: name, Test: "shard", Status: StatusMissing,
			Output: []string{"no go test output from this shard: its job failed or was cancelled before go test, or its upload failed; see the job's log"}})
	}
	return out
}

func hasFailedChild(s *Shard, t *Test) bool {
	return slices.ContainsFunc(s.Tests, func(c *Test) bool {
		return c.Package == t.Package && strings.HasPrefix(c.Name, t.Name+"/") && c.Failed()
	})
}

// rerunLine returns the command after "rerun: " in a failure's output.
func rerunLine(lines []string) string {
	for _, l := range lines {
		if after, ok := strings.CutPrefix(strings.TrimSpace(l), "rerun: "); ok {
			return after
		}
	}
	return ""
}

// Report returns the targets of every shard as rows of harness's report:
// their steps from the subtests of TestModule, their timings from the
// timings files, where a row of the same target has them.
func (r *Results) Report() *harness.Report {
	rep := &harness.Report{Steps: r.steps()}
	var rows []harness.Row
	rep.Accel, rows = r.rows(rep.Steps)
	for _, row := range rows {
		rep.Add(row)
	}
	return rep
}

// rows returns the targets' rows, sorted by name, and the accelerator of
// the timings (when they agree). A target that more than one shard ran
// gets a row per shard, named after it.
func (r *Results) rows(steps []string) (vm.Accel, []harness.Row) {
	timings, accel := r.timingsByTarget()
	order := append([]string{harness.StepBuild, verdict.BootStep}, steps...)
	order = append(order, verdict.LogStep)
	shardsOf := map[string]int{}
	for _, s := range r.Shards {
		for _, t := range s.Tests {
			if target, ok := targetOf(t.Name); ok {
				shardsOf[target]++
			}
		}
	}
	var rows []harness.Row
	for _, s := range r.Shards {
		for _, t := range s.Tests {
			target, ok := targetOf(t.Name)
			if !ok {
				continue
			}
			row := targetRow(s, t, target, order)
			if shardsOf[target] > 1 {
				row.Name += " (" + s.Name + ")"
			}
			if tt, ok := timings[target]; ok {
				for _, v := range []float64{tt.Fetch, tt.BuildRoot, tt.Module, tt.Initramfs, tt.Boot, tt.Probe} {
					row.Timings = append(row.Timings, time.Duration(v*float64(time.Second)))
				}
				row.CPU = tt.CPU
				row.Cached = fmt.Sprintf("kernel:%v module:%v", tt.KernelCached, tt.ModuleCached)
				row.RoundTrips = tt.RoundTrips
			}
			rows = append(rows, row)
		}
	}
	slices.SortStableFunc(rows, func(a, b harness.Row) int { return strings.Compare(a.Name, b.Name) })
	return accel, rows
}

// timingsByTarget returns the timings files' rows by target (fixture rows
// left out), and their accelerator when they agree.
func (r *Results) timingsByTarget() (map[string]harness.TargetTiming, vm.Accel) {
	timings := map[string]harness.TargetTiming{}
	accels := map[string]bool{}
	for _, t := range r.Timings {
		accels[t.Accel] = true
		for _, tt := range t.Targets {
			if tt.Fixture == "" {
				timings[tt.Target] = tt
			}
		}
	}
	var accel vm.Accel
	if len(accels) == 1 {
		for a := range accels {
			accel = vm.Accel(a)
		}
	}
	return timings, accel
}

// targetRow returns the row of the target test t (TestModule/<target>)
// of shard s: its steps' statuses from its subtests and its first failing
// step in order.
func targetRow(s *Shard, t *Test, target string, order []string) harness.Row {
	row := harness.Row{Name: target, Steps: map[string]string{}}
	for _, c := range s.Tests {
		if step, ok := strings.CutPrefix(c.Name, t.Name+"/"); ok && !strings.Contains(step, "/") && c.Status != StatusUnfinished {
			row.Steps[step] = c.Status
		}
	}
	// The boot has a subtest only when it failed: steps that ran mean
	// it passed.
	if _, ok := row.Steps[verdict.BootStep]; !ok && len(row.Steps) > 1 {
		row.Steps[verdict.BootStep] = contract.StatusPass
	}
	for _, st := range order {
		if row.Steps[st] == contract.StatusFail {
			row.First = st
			return row
		}
	}
	if t.Failed() {
		row.First = t.Status + " (" + s.Name + ": see its output)"
	}
	return row
}

// targetOf returns the target of a test named TestModule/<target>.
func targetOf(name string) (string, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 2 || parts[0] != moduleTest {
		return "", false
	}
	return parts[1], true
}

// steps returns the step names of the targets' subtests: the probe's in
// its order, then any other (every-line-run) as first seen. The build,
// boot and log steps are the report's own.
func (r *Results) steps() []string {
	seen := map[string]bool{}
	var extra []string
	for _, s := range r.Shards {
		for _, t := range s.Tests {
			parts := strings.Split(t.Name, "/")
			if len(parts) != 3 || parts[0] != moduleTest {
				continue
			}
			st := parts[2]
			if seen[st] || st == harness.StepBuild || st == verdict.BootStep || st == verdict.LogStep {
				continue
			}
			seen[st] = true
			if !slices.Contains(contract.FullSteps, st) {
				extra = append(extra, st)
			}
		}
	}
	var steps []string
	for _, st := range contract.FullSteps {
		if seen[st] {
			steps = append(steps, st)
		}
	}
	return append(steps, extra...)
}

// An Other is a test outside TestModule, over every shard that ran it.
type Other struct {
	Name string
	// Status is fail if it failed (or never finished) in any shard, else
	// pass if it passed in any, else skip.
	Status string
	// Subtests counts its subtests; Shards lists where it ran or skipped.
	Subtests int
	Shards   []string
	// Skip is the reason of a skip, the test's last line.
	Skip string
}

// Others returns the top-level tests other than TestModule, by name.
func (r *Results) Others() []Other {
	byName := map[string]*Other{}
	var names []string
	for _, s := range r.Shards {
		for _, t := range s.Tests {
			top, _, sub := strings.Cut(t.Name, "/")
			if top == moduleTest {
				continue
			}
			o := byName[top]
			if o == nil {
				o = &Other{Name: top, Status: contract.StatusSkip}
				byName[top] = o
				names = append(names, top)
			}
			if sub {
				o.Subtests++
				continue
			}
			o.Shards = append(o.Shards, s.Name)
			switch {
			case t.Failed():
				o.Status = "fail"
			case t.Status == contract.StatusPass && o.Status != "fail":
				o.Status = contract.StatusPass
			case t.Status == contract.StatusSkip && o.Skip == "" && len(t.Output) > 0:
				o.Skip = strings.TrimSpace(t.Output[len(t.Output)-1])
			}
		}
	}
	slices.Sort(names)
	var out []Other
	for _, n := range names {
		out = append(out, *byName[n])
	}
	return out
}

// Text returns the report as text: the kernels x steps table (with the
// timing table when timings were found), the other tests, and each
// failure with its rerun line.
func (r *Results) Text() string {
	var w strings.Builder
	fmt.Fprintf(&w, "merged %d shard(s): %s\n", len(r.Shards), strings.Join(r.shardNames(), ", "))
	rep := r.Report()
	if len(r.Timings) > 0 {
		w.WriteString(rep.String())
	} else {
		w.WriteString(rep.Summary())
	}
	if others := r.Others(); len(others) > 0 {
		fmt.Fprintf(&w, "\nother tests:\n")
		for _, o := range others {
			fmt.Fprintf(&w, "  %-32s %-5s %s\n", o.Name, o.Status, o.detail())
		}
	}
	fails := r.Failures()
	fmt.Fprintf(&w, "\n%d failure(s)\n", len(fails))
	for _, f := range fails {
		fmt.Fprintf(&w, "  %s: %s (%s)\n", f.Shard, f.Test, f.Status)
		if f.Rerun != "" {
			fmt.Fprintf(&w, "    rerun: %s\n", f.Rerun)
		}
	}
	return w.String()
}

// detail says where a test ran and how many subtests it had.
func (o Other) detail() string {
	d := "in " + strings.Join(o.Shards, ", ")
	if o.Subtests > 0 {
		d = fmt.Sprintf("%d subtests, %s", o.Subtests, d)
	}
	if o.Status == contract.StatusSkip && o.Skip != "" {
		d += ": " + o.Skip
	}
	return d
}

func (r *Results) shardNames() []string {
	var out []string
	for _, s := range r.Shards {
		out = append(out, s.Name)
	}
	return out
}

// MergedTimings returns every timings file's rows as one, for kmodtest
// plan -costs. Its accelerator is theirs when they agree, else "mixed".
func (r *Results) MergedTimings() harness.Timings {
	m := harness.Timings{Targets: []harness.TargetTiming{}}
	for i, t := range r.Timings {
		switch {
		case i == 0:
			m.Accel = t.Accel
		case m.Accel != t.Accel:
			m.Accel = "mixed"
		}
		m.Targets = append(m.Targets, t.Targets...)
	}
	return m
}
