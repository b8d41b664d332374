package harness

import (
	"fmt"

	"github.com/kmodtest/kmodtest/coverage"
	"github.com/kmodtest/kmodtest/probe"
	"github.com/kmodtest/kmodtest/verdict"
)

// stepLines are lines of the module (by a piece of their source) that a
// step, when it passes, must have run: a per-step coverage that puts
// them elsewhere mixes steps up.
var stepLines = []struct{ step, source string }{
	{probe.StepInsmod, `pr_info("loaded, netlink protocol %d\n", protocol);`},
	{probe.StepReply, `snprintf(nlmsg_data(rep), len, GREET_REPLY_FMT, portid);`},
	{probe.StepBadLength, `pr_debug("malformed message, len %u with %u bytes left, dropping datagram\n",`},
	{probe.StepEmptyGreeting, `if (textlen < 1 || textlen > GREET_TEXT_MAX)`},
	{probe.StepUnknownType, `return -EOPNOTSUPP;`},
	{probe.StepNetns, `gn->sk = netlink_kernel_create(net, protocol, &cfg);`},
	{probe.StepAllocFailures, `return -ENOMEM;`},
	{probe.StepRmmod, `unregister_pernet_subsys(&greet_net_ops);`},
	{probe.StepModuleParam, `pr_err("invalid netlink protocol %d, must be 0 to %d\n",`},
}

// idleSteps run no line of the module: the module is unloaded during
// socket-gone, and coverage only reads counts.
var idleSteps = []string{probe.StepSocketGone, probe.StepCoverage}

// StepCoverageProblems checks a run's per-step coverage against what its
// steps are known to run: every passing step from the first snapshot on
// sent one, counts
// never fell (the kernel keeps them across unload and reload), the
// steps' lines add up to the total, and the steps of stepLines and
// idleSteps ran what they must. It returns one line per problem.
func StepCoverageProblems(st *coverage.Steps, total *coverage.Result, rep *verdict.Report) []string {
	var problems []string
	passed := func(name string) bool {
		s, ok := rep.Step(name)
		return ok && s.Status == probe.StatusPass
	}
	loaded := false // the module has gcov data once it was loaded
	for _, s := range st.Steps {
		loaded = loaded || s.Files != nil
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
	for _, want := range stepLines {
		s, ok := st.Step(want.step)
		if !ok || s.Files == nil || !passed(want.step) {
			continue
		}
		switch ran, found := s.Ran(want.source); {
		case !found:
			problems = append(problems, fmt.Sprintf("no line with code holds %q: update stepLines to the module", want.source))
		case !ran:
			problems = append(problems, fmt.Sprintf("step %s did not run %q", want.step, want.source))
		}
	}
	for _, name := range idleSteps {
		if s, ok := st.Step(name); ok && s.Files != nil && passed(name) {
			for _, f := range s.Files {
				for _, l := range f.Lines {
					if l.Count != 0 {
						problems = append(problems, fmt.Sprintf("step %s ran %s:%d %d times, want no line of the module", name, f.Name, l.Number, l.Count))
					}
				}
			}
		}
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
