package harness

import (
	"fmt"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/coverage"
	"github.com/kmodtest/kmodtest/verdict"
)

// StepCoverageProblems checks a run's per-step coverage with what holds
// for any module, however its source is written: every passing step from
// insmod on sent a snapshot, counts never fell (the kernel keeps them
// across unload and reload), and the steps' lines add up to the total. It
// returns one line per problem. That the per-step split puts the module's
// lines on the right steps is the harness's own concern, tested on a
// recorded run (stepcoverage_test.go), not a verdict on the module.
func StepCoverageProblems(st *coverage.Steps, total *coverage.Result, rep *verdict.Report) []string {
	var problems []string
	passed := func(name string) bool {
		s, ok := rep.Step(name)
		return ok && s.Status == contract.StatusPass
	}
	loaded := false // the module has gcov data once insmod loaded it
	for _, s := range st.Steps {
		loaded = loaded || (s.Step == contract.StepInsmod && passed(s.Step))
		switch {
		case s.Missing != "" && passed(s.Step) && loaded:
			problems = append(problems, fmt.Sprintf("step %s passed but has no snapshot: %s", s.Step, s.Missing))
		case s.Reset:
			problems = append(problems, fmt.Sprintf("step %s: counts fell since the step before: the kernel did not keep them", s.Step))
		}
	}
	if total != nil {
		problems = append(problems, sumProblems(st, total)...)
	}
	return problems
}

// sumProblems checks that the steps' lines add up to the total, line by
// line: whatever is missing from the steps was run by none of them.
func sumProblems(st *coverage.Steps, total *coverage.Result) []string {
	type key struct {
		file string
		line int
	}
	sum := map[key]int64{}
	for _, s := range st.Steps {
		for _, f := range s.Files {
			for _, l := range f.Lines {
				sum[key{f.Name, l.Number}] += l.Count
			}
		}
	}
	var problems []string
	for _, f := range total.Files {
		for _, l := range f.Lines {
			if got := sum[key{f.Name, l.Number}]; got != l.Count {
				problems = append(problems, fmt.Sprintf("%s:%d ran %d times in all, but %d times in the steps", f.Name, l.Number, l.Count, got))
			}
		}
	}
	return problems
}
