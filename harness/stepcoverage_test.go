package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/coverage"
	"github.com/kmodtest/kmodtest/verdict"
)

// TestStepSnapshots: every step of the run gets its end event's data, or
// says why it has none, in the order the steps ran.
func TestStepSnapshots(t *testing.T) {
	gcda := map[string][]byte{"/m.gcda": {1}}
	events := []contract.Event{
		{Kind: contract.KindBegin, Step: contract.StepInsmod},
		{Kind: contract.KindEnd, Step: contract.StepInsmod, Status: contract.StatusPass, Files: gcda},
		{Kind: contract.KindBegin, Step: contract.StepReply},
		{Kind: contract.KindEnd, Step: contract.StepReply, Status: contract.StatusFail},
		{Kind: contract.KindBegin, Step: contract.StepAck},
	}
	got := StepSnapshots([]string{contract.StepInsmod, contract.StepReply, contract.StepAck, contract.StepRmmod}, events)
	want := []coverage.Snapshot{
		{Step: contract.StepInsmod, Gcda: gcda},
		{Step: contract.StepReply, Missing: "the step (fail) sent no gcov data: the module was not loaded yet, or reading it failed"},
		{Step: contract.StepAck, Missing: "the step did not end: the prober or the guest stopped"},
		{Step: contract.StepRmmod, Missing: "the step did not end: the prober or the guest stopped"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unexpected snapshots (-want +got):\n%s", diff)
	}
}

// realRun loads the end events of a real full run of the module on
// 6.12-debug (testdata/stepcoverage: the events with their gcov data, and
// the module's source and .gcno from that build) and the verdict they
// give (every step passed).
func realRun(t *testing.T) ([]contract.Event, []string, *verdict.Report) {
	t.Helper()
	if _, err := exec.LookPath("gcov-12"); err != nil {
		t.Skip("gcov-12 not installed")
	}
	data, err := os.ReadFile(filepath.Join("testdata", "stepcoverage", "events.log"))
	if err != nil {
		t.Fatal(err)
	}
	var events []contract.Event
	var steps []string
	rep := &verdict.Report{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		e, ok, err := contract.ParseLine([]byte(line))
		if !ok || err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		events = append(events, e)
		steps = append(steps, e.Step)
		rep.Steps = append(rep.Steps, verdict.Step{Name: e.Step, Status: e.Status})
	}
	return events, steps, rep
}

// stepLines are lines of the recorded run's module
// (testdata/stepcoverage/NetlinkGreetingsLKM.c, by a piece of their
// source) that a step, when it passes, must have run, or whose every branch outcome it
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

// attributionProblems checks that the harness's per-step split put the
// recorded module's lines on the right steps: the steps of stepLines ran
// their lines, and idleSteps ran none. It reads the module's source, so
// it tests the harness on recorded data; the verdict on a user's module
// (StepCoverageProblems) does not depend on how its source is written.
func attributionProblems(st *coverage.Steps, rep *verdict.Report) []string {
	var problems []string
	passed := func(name string) bool {
		s, ok := rep.Step(name)
		return ok && s.Status == contract.StatusPass
	}
	for _, want := range stepLines {
		s, ok := st.Step(want.step)
		if !ok || s.Files == nil || !passed(want.step) {
			continue
		}
		lines := s.Lines(want.source)
		if len(lines) == 0 {
			problems = append(problems, fmt.Sprintf("no line with code holds %q: update stepLines to testdata/stepcoverage", want.source))
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

// TestStepCoverageProblems: the real run's per-step coverage passes the
// verdict's checks and the harness's own attribution check, and each way
// of breaking the split is caught by one of them.
func TestStepCoverageProblems(t *testing.T) {
	events, steps, rep := realRun(t)
	notes := filepath.Join("testdata", "stepcoverage")
	check := func(events []contract.Event) []string {
		t.Helper()
		st, err := coverage.GenerateSteps(t.Context(), "gcov-12", notes, StepSnapshots(steps, events), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		total, err := coverage.Generate(t.Context(), "gcov-12", notes, events[len(events)-1].Files, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return append(StepCoverageProblems(st, total, rep), attributionProblems(st, rep)...)
	}
	if got := check(events); len(got) != 0 {
		t.Fatalf("the real run has problems:\n%s", strings.Join(got, "\n"))
	}

	index := func(step string) int {
		return slices.IndexFunc(events, func(e contract.Event) bool { return e.Step == step })
	}
	broken := []struct {
		name    string
		breakIt func(events []contract.Event)
		want    string
	}{
		{"reply and socket-gone swapped", func(ev []contract.Event) {
			r, s := index(contract.StepReply), index(contract.StepSocketGone)
			ev[r].Step, ev[s].Step = ev[s].Step, ev[r].Step
		}, "step ack: counts fell"},
		{"reply's lines counted for ack", func(ev []contract.Event) {
			ev[index(contract.StepReply)].Files = ev[index(contract.StepInsmod)].Files
		}, "step reply did not run line"},
		{"a step without its snapshot", func(ev []contract.Event) {
			ev[index(contract.StepAck)].Files = nil
		}, "step ack passed but has no snapshot"},
		{"no snapshots but the total", func(ev []contract.Event) {
			for i := range ev[:len(ev)-1] {
				ev[i].Files = nil
			}
		}, "step insmod passed but has no snapshot"},
		{"every step sends the total (not subtracted)", func(ev []contract.Event) {
			for i := range ev {
				ev[i].Files = ev[len(ev)-1].Files
			}
		}, "step rmmod did not run line"},
		{"counts restarted at reload", func(ev []contract.Event) {
			ev[index(contract.StepReload)].Files = ev[index(contract.StepInsmod)].Files
		}, "step reload: counts fell"},
		{"socket-gone with rmmod's lines", func(ev []contract.Event) {
			ev[index(contract.StepRmmod)].Files = ev[index(contract.StepRmmod)-1].Files
		}, "step socket-gone ran NetlinkGreetingsLKM.c:"},
		{"alloc-failures without its failed allocations", func(ev []contract.Event) {
			ev[index(contract.StepAllocFailures)].Files = ev[index(contract.StepAllocFailures)-1].Files
		}, "step alloc-failures did not run line"},
	}
	for _, b := range broken {
		t.Run(b.name, func(t *testing.T) {
			ev := slices.Clone(events)
			b.breakIt(ev)
			got := check(ev)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, b.want) }) {
				t.Errorf("want a problem %q, got:\n%s", b.want, strings.Join(got, "\n"))
			}
		})
	}
}

// TestStepCoverageProblemsIgnoreSource is issue 17's case: a correct
// module written differently (here the recorded one with its reply
// buffer renamed from out, as a refactor would) passes the verdict's
// checks, which read counts, not source text.
func TestStepCoverageProblemsIgnoreSource(t *testing.T) {
	events, steps, rep := realRun(t)
	notes := t.TempDir()
	for _, name := range []string{"NetlinkGreetingsLKM.c", "NetlinkGreetingsLKM.gcno"} {
		data, err := os.ReadFile(filepath.Join("testdata", "stepcoverage", name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".c") {
			// Same lines, other words: gcov's line numbers still hold.
			data = regexp.MustCompile(`\bout\b`).ReplaceAll(data, []byte("reply_skb"))
		}
		if err := os.WriteFile(filepath.Join(notes, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := coverage.GenerateSteps(t.Context(), "gcov-12", notes, StepSnapshots(steps, events), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	total, err := coverage.Generate(t.Context(), "gcov-12", notes, events[len(events)-1].Files, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := st.Step(contract.StepAllocFailures); !ok || len(s.Lines("if (!out)")) != 0 || len(s.Lines("if (!reply_skb)")) == 0 {
		t.Fatal("the source was not rewritten: the test proves nothing")
	}
	if got := StepCoverageProblems(st, total, rep); len(got) != 0 {
		t.Errorf("a module written differently has problems:\n%s", strings.Join(got, "\n"))
	}
}

// TestCoverageReasons: on the real run every line that never ran has its
// reason in kmod/unreachable.txt; without the file the line is a gap, and
// a reason for a line that runs is a gap too.
func TestCoverageReasons(t *testing.T) {
	events, _, _ := realRun(t)
	notes := filepath.Join("testdata", "stepcoverage")
	total, err := coverage.Generate(t.Context(), "gcov-12", notes, events[len(events)-1].Files, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reasonsPath := filepath.Join("..", "kmod", ReasonsFile)
	reasons, err := coverage.LoadReasons(reasonsPath)
	if err != nil {
		t.Fatal(err)
	}
	if gaps := total.Explain(reasons, reasonsPath).Gaps(); len(gaps) != 0 {
		t.Errorf("the real run has gaps with the repo's reasons:\n%s", strings.Join(gaps, "\n"))
	}
	if gaps := total.Explain(nil, reasonsPath).Gaps(); len(gaps) != 1 || !strings.Contains(gaps[0], "return -EMSGSIZE; ran in no step") {
		t.Errorf("without reasons: want the EMSGSIZE line as the one gap, got %q", gaps)
	}
	runs := append(reasons, coverage.Reason{File: "NetlinkGreetingsLKM.c", Text: "return greet_reply(skb, nlh);", Why: "wrong"})
	if gaps := total.Explain(runs, reasonsPath).Gaps(); len(gaps) != 1 || !strings.Contains(gaps[0], "no such line is left unrun") {
		t.Errorf("a reason for a line that runs: want it as the one gap, got %q", gaps)
	}
}
