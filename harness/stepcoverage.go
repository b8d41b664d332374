package harness

import (
	"fmt"
	"slices"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/coverage"
	"github.com/kmodtest/kmodtest/verdict"
)

// stepLines are lines of the module (by a piece of their source) that a
// step, when it passes, must have run, or whose every branch outcome it
// must have taken (the return statements of error paths have no line of
// their own in gcov's data: the branch before them stands for them). A
// per-step coverage that puts them elsewhere mixes steps up.
var stepLines = []struct {
	step, source string
	branches     bool
}{
	{contract.StepInsmod, `pr_info("loaded, netlink protocol %d\n", protocol);`, false},
	{contract.StepReply, `snprintf(nlmsg_data(rep), len, GREET_REPLY_FMT, portid);`, false},
	// Headers shorter than 16 bytes and lengths beyond the datagram.
	{contract.StepBadLength, `if (nlh->nlmsg_len < NLMSG_HDRLEN ||`, true},
	{contract.StepNetns, `gn->sk = netlink_kernel_create(net, protocol, &cfg);`, false},
	// nlmsg_new failed, and succeeded.
	{contract.StepAllocFailures, `if (!out)`, true},
	{contract.StepRmmod, `unregister_pernet_subsys(&greet_net_ops);`, false},
	{contract.StepModuleParam, `pr_err("invalid netlink protocol %d, must be 0 to %d\n",`, false},
}

// idleSteps run no line of the module: the module is unloaded during
// socket-gone, and coverage only reads counts.
var idleSteps = []string{contract.StepSocketGone, contract.StepCoverage}

// StepCoverageProblems checks a run's per-step coverage against what its
// steps are known to run: every passing step from insmod on sent a
// snapshot, counts
// never fell (the kernel keeps them across unload and reload), the
// steps' lines add up to the total, and the steps of stepLines and
// idleSteps ran what they must. It returns one line per problem.
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
	for _, want := range stepLines {
		s, ok := st.Step(want.step)
		if !ok || s.Files == nil || !passed(want.step) {
			continue
		}
		lines := s.Lines(want.source)
		if len(lines) == 0 {
			problems = append(problems, fmt.Sprintf("no line with code holds %q: update stepLines to the module", want.source))
			continue
		}
		for _, l := range lines {
			switch {
			case l.Count == 0:
				problems = append(problems, fmt.Sprintf("step %s did not run line %d %q", want.step, l.Number, want.source))
			case want.branches && slices.Contains(l.Branches, 0):
				problems = append(problems, fmt.Sprintf("step %s did not take every branch of line %d %q: %v", want.step, l.Number, want.source, l.Branches))
			}
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
