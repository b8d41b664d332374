package vmtests

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/harness"
)

// debugKernel is the matrix's sanitizer kernel.
const debugKernel = "6.12-debug"

// debugFixtures are the bugs that Debian's stock 6.1 misses and the
// debug kernel must catch (kmod/fixtures/debug). A leak of the module's is
// reported by the first kmemleak scan after it: the one after leak.
var debugFixtures = []struct {
	name   string
	steps  []string
	reason *regexp.Regexp
}{
	{"small-leak", []string{contract.StepLeak}, regexp.MustCompile(`kmemleak: \d+ unreferenced object.*\n(.*\n)*.*\[NetlinkGreetingsLKM\]`)},
	{"oob-read", []string{contract.StepReply}, regexp.MustCompile(`BUG: KASAN: slab-out-of-bounds`)},
	{"use-after-free", []string{contract.StepReply}, regexp.MustCompile(`BUG: KASAN: slab-use-after-free`)},
	{"alloc-under-spinlock", []string{contract.StepReply}, regexp.MustCompile(`sleeping function called from invalid context`)},
	{"success-ack-on-enomem", []string{contract.StepAllocFailures}, regexp.MustCompile(`got \["ack seq \d+ error 0"\]`)},
	{"lock-order", []string{contract.StepUnknownType}, regexp.MustCompile(`possible circular locking dependency`)},
	// The timer first runs one jiffy after load: lockdep sees both
	// usages by the first greeting or two.
	{"softirq-lock", []string{contract.StepReply, contract.StepAck, contract.StepNoReplyWithoutAck}, regexp.MustCompile(`inconsistent lock state`)},
	{"array-index", []string{contract.StepTextLimits}, regexp.MustCompile(`UBSAN: array-index-out-of-bounds`)},
	// The socket is allocated by socket(2), in net/netlink: kmemleak's
	// record does not name the module; the step that sent the empty
	// greeting is blamed by the time of the allocation.
	{"sender-socket-ref", []string{contract.StepEmptyGreeting}, regexp.MustCompile(`(?s)kmemleak: \d+ unreferenced object\(s\) allocated during this step.*sk_alloc`)},
	// Module init forgets to free its first allocation when the second
	// step fails: only a failed load shows it, which the insmod sweep makes.
	{"init-error-leak", []string{contract.StepInsmodFaults}, regexp.MustCompile(`(?s)kmemleak: \d+ unreferenced object\(s\) allocated by the module, the first:\nallocated during insmod-faults, fault point \d+:\nunreferenced object`)},
	{"shared-reply-buffer", []string{contract.StepConcurrentSocket, contract.StepSharedSocket}, regexp.MustCompile(`got "Msg from Process \d+ has been processed by kernel"|text "Msg from Process \d+ has been processed by kernel" \(want`)},
}

// TestDebugFixtures proves the debug kernel's detectors fire: each broken
// module must fail one of its steps, for its reason. It runs with the
// fixtures when the debug kernel is part of the run (built, or
// -debug-kernel).
func TestDebugFixtures(t *testing.T) {
	if !env.Options.Fixtures {
		t.Skip("broken-module fixtures are off: run with -fixtures or KMODTEST_FIXTURES=1 (make test does)")
	}
	i := slices.IndexFunc(env.Targets, func(tg harness.Target) bool { return tg.Kernel.Name == debugKernel })
	if i < 0 {
		t.Skipf("the %s kernel is not part of this run (not built yet, or not selected): -debug-kernel builds it", debugKernel)
	}
	tg := env.Targets[i]
	patches, err := filepath.Glob(filepath.Join(env.Repo, "kmod", "fixtures", "debug", "*.patch"))
	if err != nil {
		t.Fatal(err)
	}
	if len(patches) != len(debugFixtures) {
		t.Errorf("kmod/fixtures/debug has %d patches, debugFixtures expects %d: keep them together", len(patches), len(debugFixtures))
	}
	for _, f := range debugFixtures {
		if runsSubtest(t, f.name) {
			env.Prepare(t.Context(), tg.Kernel, filepath.Join(env.Repo, "kmod", "fixtures", "debug", f.name+".patch"))
		}
	}
	for _, f := range debugFixtures {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			out := bootTarget(t, harness.Job{
				Target: tg,
				Steps:  fixtureSteps(f.steps),
				Patch:  filepath.Join(env.Repo, "kmod", "fixtures", "debug", f.name+".patch"),
				Dir:    filepath.Join(env.Artifacts, "fixtures-debug", f.name),
			})
			if out.Build != nil {
				t.Fatalf("fixture %s does not build: %v", f.name, out.Build)
			}
			var seen []string
			for _, name := range f.steps {
				s, ok := out.Report.Step(name)
				if !ok || !s.Failed() {
					continue
				}
				all := strings.Join(append(s.Reasons, s.Evidence...), "\n")
				if f.reason.MatchString(all) {
					t.Logf("caught: step %s: %s", name, firstLine(s.Reasons[0]))
					return
				}
				seen = append(seen, name+": "+all)
			}
			if len(seen) == 0 {
				t.Fatalf("fixture %s: steps %v passed; the detector did not fire", f.name, f.steps)
			}
			t.Errorf("fixture %s failed, but not for the expected reason (want a match for %q in):\n%s", f.name, f.reason, strings.Join(seen, "\n"))
		})
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// fixtureSteps are the steps a debug fixture runs: every step but the
// setup fault sweeps (insmod-faults, netns-faults: minutes on the debug
// kernel), unless the fixture is caught there. Each fixture still runs
// every other step, so a bug caught by the wrong detector shows.
func fixtureSteps(catching []string) []string {
	var steps []string
	for _, s := range contract.FullSteps {
		sweep := s == contract.StepInsmodFaults || s == contract.StepNetnsFaults
		if !sweep || slices.Contains(catching, s) {
			steps = append(steps, s)
		}
	}
	return steps
}
