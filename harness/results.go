package harness

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/internal/proc"
	"github.com/kmodtest/kmodtest/runresults"
	"github.com/kmodtest/kmodtest/verdict"
	"github.com/kmodtest/kmodtest/vm"
)

// ResultsSource is results.json's source for a run of the VM tests.
const ResultsSource = "go test ./vmtests"

// Results returns the report's rows as results.json holds them: every
// row a target (fixture rows marked), its steps from the verdict (build,
// boot, the probe's steps, kernel-log), with their durations and their
// failures' first lines. The caller adds the run's metadata.
func (r *Report) Results() *runresults.Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	run := &runresults.Run{Schema: runresults.SchemaVersion, Source: ResultsSource, Accel: string(r.Accel), Targets: []runresults.Target{}}
	run.Steps = append([]string{StepBuild, verdict.BootStep}, r.Steps...)
	run.Steps = append(run.Steps, verdict.LogStep)
	for _, row := range r.rows {
		run.Targets = append(run.Targets, resultsTarget(row))
	}
	run.Sort()
	return run
}

// resultsTarget returns one row as a results.json target.
func resultsTarget(row Row) runresults.Target {
	t := runresults.Target{
		Name:    row.Name,
		Kernel:  row.Target.Kernel.Name,
		Profile: row.Target.Profile,
		Arch:    string(row.Target.Kernel.Arch.OrDefault()),
		Release: row.Release,
		CPU:     row.CPU,
		Guest:   row.Guest,
		Fixture: row.Fixture,
		Steps:   []runresults.Step{},

		RoundTrips: row.RoundTrips,
	}
	build := runresults.Step{Name: StepBuild, Status: row.Steps[StepBuild]}
	for i, d := range row.Timings {
		if i < 3 { // fetch, build root, module
			build.Seconds += d.Seconds()
		}
	}
	build.Seconds = round(build.Seconds)
	if row.BuildError != "" {
		build.Failure = runresults.FailureLines(strings.Split(row.BuildError, "\n"))
	}
	t.Steps = append(t.Steps, build)
	if v := row.Verdict; v != nil {
		if v.Kernel != "" {
			t.Release = v.Kernel
		}
		boot := resultsStep(v.Boot)
		if len(row.Timings) > 4 {
			boot.Seconds = round(row.Timings[4].Seconds())
		}
		t.Steps = append(t.Steps, boot)
		for _, s := range v.Steps {
			t.Steps = append(t.Steps, resultsStep(s))
		}
		t.Steps = append(t.Steps, resultsStep(v.Log))
	}
	t.Summarise()
	return t
}

// resultsStep returns a verdict's step: a failure's reasons, then the
// kernel lines behind them; a skip's reasons.
func resultsStep(s verdict.Step) runresults.Step {
	st := runresults.Step{Name: s.Name, Status: s.Status, Seconds: round(float64(s.DurationMS) / 1000)}
	switch {
	case s.Failed():
		lines := slices.Clone(s.Reasons)
		if len(s.Evidence) > 0 {
			lines = append(lines, "kernel lines:")
			lines = append(lines, s.Evidence...)
		}
		st.Failure = runresults.FailureLines(lines)
	case st.Status == runresults.StatusSkip:
		st.SkipReason = strings.Join(s.Reasons, "; ")
	}
	return st
}

func round(sec float64) float64 {
	return float64(int64(sec*1000+0.5)) / 1000
}

// writeResults writes results.json and results.ktap into the artifacts
// directory, with the run's date, kmodtest's commit and the QEMU
// versions.
func (s *Session) writeResults() error {
	run := s.report.Results()
	run.Date = time.Now().UTC().Truncate(time.Second)
	run.Commit = repoCommit(s.ctx, s.Repo)
	var bins []string
	for _, t := range s.Targets {
		if bin := vm.QEMUBinary(t.Kernel.Arch); !slices.Contains(bins, bin) {
			bins = append(bins, bin)
		}
	}
	run.QEMU = qemuVersions(s.ctx, bins)
	if err := run.WriteDir(s.Artifacts); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// repoCommit returns `git describe --always --dirty` of the repository,
// or "" when it is no git work tree or git is missing: the commit is
// worth having, not worth failing a run for.
func repoCommit(ctx context.Context, repo string) string {
	out, err := proc.Output(proc.Command(ctx, "git", "-C", repo, "describe", "--always", "--dirty", "--abbrev=12"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// qemuVersions returns the first line of each QEMU's --version, or what
// failed in its place.
func qemuVersions(ctx context.Context, bins []string) []string {
	var out []string
	for _, bin := range bins {
		v, err := proc.Output(proc.Command(ctx, bin, "--version"))
		if err != nil {
			out = append(out, fmt.Sprintf("%s: version unknown (%v)", bin, err))
			continue
		}
		first, _, _ := strings.Cut(string(v), "\n")
		out = append(out, strings.TrimSpace(first))
	}
	return out
}
