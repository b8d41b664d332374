package check

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/runresults"
	"github.com/kmodtest/kmodtest/vm"
)

// ResultsSource is results.json's source for a check.
const ResultsSource = "kmodtest check"

// Results is the report in results.json's schema (package runresults),
// so that a check and the VM matrix are read, and rendered as KTAP, by
// the same code: a target per row, named "KERNEL MODULE" ("6.1
// v4l2loopback", "6.1 test/ctl"), with Project and Module set, and a
// step per cell that ran (a "-" cell is left out). The metadata says
// which kmodtest (c.Repo's commit) and which QEMU ran it.
func (r *Report) Results(ctx context.Context, c Options) *runresults.Run {
	run := &runresults.Run{
		Schema:  runresults.SchemaVersion,
		Date:    time.Now().UTC().Truncate(time.Second),
		Source:  ResultsSource,
		Project: r.Project,
		Steps:   slices.Clone(Steps),
		Targets: []runresults.Target{},
	}
	if c.Repo != "" {
		run.Commit = harness.RepoCommit(ctx, c.Repo)
	}
	arches := map[string]string{}
	var qemus []string
	for _, k := range c.Kernels {
		a := k.Arch.OrDefault()
		arches[k.Name] = string(a)
		if bin := vm.QEMUBinary(k.Arch); !slices.Contains(qemus, bin) {
			qemus = append(qemus, bin)
		}
	}
	guests := false
	for _, row := range r.Rows {
		t := runresults.Target{
			Name:    row.Kernel + " " + row.Module,
			Kernel:  row.Kernel,
			Arch:    arches[row.Kernel],
			Release: row.Release,
			Module:  row.Module,
			Steps:   []runresults.Step{},
		}
		for _, s := range Steps {
			state := row.States[s]
			st := runresults.Step{Name: s, Seconds: row.Seconds[s]}
			switch state {
			case StatePass:
				st.Status = runresults.StatusPass
			case StateFail:
				st.Status = runresults.StatusFail
				st.Failure = runresults.FailureLines(footnoteFirst(row.Why[s]))
			case StateSkip:
				st.Status = runresults.StatusSkip
				if len(row.Why[s]) > 0 {
					st.SkipReason = firstReason(row.Why[s])
				}
			default:
				continue
			}
			if s != "build" && s != "modinfo" {
				guests = true
			}
			t.Steps = append(t.Steps, st)
		}
		t.Summarise()
		run.Targets = append(run.Targets, t)
	}
	if guests {
		run.QEMU = harness.QEMUVersions(ctx, qemus)
		if len(c.Kernels) > 0 {
			accel, _ := harness.DetectAccel(ctx, vm.QEMUBinary(c.Kernels[0].Arch))
			run.Accel = string(accel)
		}
	}
	return run
}

// footnoteFirst puts the line the check's own footnote quotes (the
// first compiler error, a kernel headline) first, so that runresults'
// Markdown, which quotes a failure's first line, says the same.
func footnoteFirst(why []string) []string {
	first := firstReason(why)
	if first == "" || (len(why) > 0 && why[0] == first) {
		return why
	}
	return append([]string{first}, why...)
}

// WriteResults writes the report's results.json and results.ktap into
// dir.
func (r *Report) WriteResults(ctx context.Context, c Options, dir string) error {
	if err := r.Results(ctx, c).WriteDir(dir); err != nil {
		return fmt.Errorf("check results: %w", err)
	}
	return nil
}
