package vmtests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/kernels"
)

// fixtureKernel is the kernel the broken modules are tried on: the
// host-compiled 6.1, booted with the hardened profile so that memory
// checks are on.
const fixtureKernel = "6.1"

// fixtures says, for each deliberately broken module in kmod/fixtures,
// which step must fail and what its failure must say. A fixture that
// passes, or fails elsewhere only, is a detector that does not work.
var fixtures = []fixture{
	{name: "no-ack", step: "ack", reason: regexp.MustCompile("no ack")},
	{name: "no-reply", step: "reply", reason: regexp.MustCompile("no reply")},
	{name: "wrong-seq", step: "reply", reason: regexp.MustCompile("seq")},
	{name: "reply-to-nlmsg-pid", step: "spoofed-pid", reason: regexp.MustCompile(`want \[reply`)},
	{name: "no-length-check", step: "empty-greeting", reason: regexp.MustCompile("EINVAL")},
	{name: "double-free", step: "never-reads", reason: regexp.MustCompile("BUG")},
	{name: "no-release-on-exit", step: "socket-gone", reason: regexp.MustCompile("EPROTONOSUPPORT|unable to handle page fault")},
	{name: "warn-on-input", step: "text-limits", reason: regexp.MustCompile("WARNING")},
	{name: "leak", step: "leak", reason: regexp.MustCompile("slab grew")},
	{name: "panic-on-input", step: "text-limits", reason: regexp.MustCompile("panicked during the step")},
	{name: "log-unlimited", step: "greeting-log", reason: regexp.MustCompile(`at most 10 log lines \(rate limited\)`)},
	{name: "debug-seq-port-swapped", step: "debug-log", reason: regexp.MustCompile(`want the debug line "NetlinkGreetingsLKM: message type 20`)},
	{name: "log-raw-text", step: "greeting-log", reason: regexp.MustCompile("want the log line")},
	{name: "reply-multi", step: "reply", reason: regexp.MustCompile(`reply flags 0x2 \(NLM_F_MULTI\), want 0`)},
	{name: "batch-of-eight", step: "batch", reason: regexp.MustCompile(`40 mixed messages in one datagram: want`)},
	{name: "log-invalid", step: "empty-greeting", reason: regexp.MustCompile(`want no kernel log line "NetlinkGreetingsLKM: greeting from port \d+:"`)},
	{name: "ignore-protocol-param", step: "module-param", reason: regexp.MustCompile("NETLINK_ROUTE, taken")},
	{name: "refuse-unprivileged-in-netns", step: "unprivileged-netns", reason: regexp.MustCompile("EPERM")},
	{name: "netns-never-put", step: "netns-freed", reason: regexp.MustCompile(`network namespace net:\[\d+\] \(nsid \d+, .*\) was not freed within`), only: true},
	// With two vCPUs the prober runs on while one CPU spins: it abandons
	// the step at its timeout. With one the whole guest falls silent and
	// the host's silence bound fires: both detectors are proven.
	{name: "hang-on-input", step: "text-limits", reason: regexp.MustCompile(`did not finish within`)},
	{name: "hang-on-input", vcpus: 1, step: "text-limits", reason: regexp.MustCompile("hung during the step"), silence: 45 * time.Second},
	// 2 ms of sleep per acked greeting: only the round trip notices.
	{name: "slow-ack", step: "round-trip", reason: regexp.MustCompile(`median round trip is [\d.]+ times the kernel's`), only: true},
}

// A fixture is a broken module and where the harness must catch it.
type fixture struct {
	name string
	step string
	// reason must match the step's reasons or evidence.
	reason *regexp.Regexp
	// silence shortens the host's wait for a guest that went quiet.
	silence time.Duration
	// vcpus, when set, replaces the target's number of vCPUs.
	vcpus int
	// only requires every other step to pass: a bug that only this
	// step's detector sees.
	only bool
}

// label names the fixture's subtest and artifacts: its name, and its
// vCPUs when they are not the target's.
func (f fixture) label() string {
	if f.vcpus == 0 {
		return f.name
	}
	return fmt.Sprintf("%s-smp%d", f.name, f.vcpus)
}

// TestFixtures proves the detectors fire: each broken module must fail on
// its step, for its reason.
func TestFixtures(t *testing.T) {
	if !env.Options.Fixtures {
		t.Skip("broken-module fixtures are off: run with -fixtures or KMODTEST_FIXTURES=1 (make test does)")
	}
	if env.Custom != nil {
		t.Skip("fixtures run on the matrix's " + fixtureKernel + " kernel, not on a custom one")
	}
	name := os.Getenv("KMODTEST_FIXTURE_KERNEL")
	if name == "" {
		name = fixtureKernel
	}
	matrix, err := kernels.LoadMatrix()
	if err != nil {
		t.Fatal(err)
	}
	sel, err := kernels.Select(matrix, []string{name})
	if err != nil {
		t.Fatal(err)
	}
	tg := harness.Target{Kernel: sel[0], Profile: "hardened"}

	patches, err := filepath.Glob(filepath.Join(env.Repo, "kmod", "fixtures", "*.patch"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range patches {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".patch"))
	}
	for _, f := range fixtures {
		if !slices.Contains(names, f.name) {
			t.Errorf("fixture %s is expected but kmod/fixtures/%s.patch does not exist", f.name, f.name)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(fixtures, func(f fixture) bool { return f.name == n }) {
			t.Errorf("kmod/fixtures/%s.patch has no expectation in TestFixtures: say which step must catch it", n)
		}
	}

	for _, f := range fixtures {
		if runsSubtest(t, f.label()) {
			patch := filepath.Join(env.Repo, "kmod", "fixtures", f.name+".patch")
			env.Prepare(t.Context(), tg.Kernel, patch)
		}
	}
	go env.BaseImageFor(tg.Kernel.Arch) // builds while kernels download
	for _, f := range fixtures {
		t.Run(f.label(), func(t *testing.T) {
			t.Parallel()
			patch := filepath.Join(env.Repo, "kmod", "fixtures", f.name+".patch")
			ftg := tg
			if f.vcpus != 0 {
				ftg.Kernel.SMP = f.vcpus
			}
			out := bootTarget(t, harness.Job{
				Target:  ftg,
				Steps:   contract.FullSteps,
				Patch:   patch,
				Dir:     filepath.Join(env.Artifacts, "fixtures", f.label()),
				Silence: f.silence,
			})
			if out.Build != nil {
				t.Fatalf("fixture %s does not build: %v", f.name, out.Build)
			}
			if b := out.Report.Boot; b.Failed() {
				t.Fatalf("fixture %s: the guest did not boot:\n%s", f.name, harness.FailureText(b, out.Boot, out.Result.Output))
			}
			s, ok := out.Report.Step(f.step)
			if !ok {
				t.Fatalf("step %s was not run", f.step)
			}
			if !s.Failed() {
				t.Fatalf("fixture %s: step %s passed; the detector did not fire", f.name, f.step)
			}
			all := strings.Join(append(s.Reasons, s.Evidence...), "\n")
			if !f.reason.MatchString(all) {
				t.Errorf("fixture %s: step %s failed, but not for the expected reason (want a match for %q in):\n%s", f.name, f.step, f.reason, all)
			}
			if f.only {
				for _, o := range out.Report.Steps {
					if o.Name != f.step && o.Failed() {
						t.Errorf("fixture %s: step %s failed too, where only %s should: %s", f.name, o.Name, f.step, strings.Join(o.Reasons, "; "))
					}
				}
			}
			t.Logf("caught: step %s: %s", f.step, s.Reasons[0])
		})
	}
}

// archFixtures are broken modules in kmod/fixtures/arch that break on one
// architecture only. Each must fail its step on the kernel named caught
// and pass it on passes, the same release built for the other
// architecture: the proof that the arm64 rows find what amd64 cannot.
var archFixtures = []archFixture{
	// Plain char is signed on x86-64 and unsigned on arm64: the DEL check
	// text[i] > '~' refuses every byte above 0x7f on arm64 only.
	{name: "char-signedness", step: contract.StepHighBytes, caught: "6.1-arm64", passes: "6.1", reason: regexp.MustCompile("EINVAL")},
}

// An archFixture is a module broken on one architecture only.
type archFixture struct {
	name, step     string
	caught, passes string
	reason         *regexp.Regexp
}

// TestArchFixtures proves that an architecture's rows catch what the
// other's cannot: each fixture fails on one kernel and passes on the same
// release for the other architecture.
func TestArchFixtures(t *testing.T) {
	if !env.Options.Fixtures {
		t.Skip("broken-module fixtures are off: run with -fixtures or KMODTEST_FIXTURES=1 (make test does)")
	}
	if env.Custom != nil {
		t.Skip("architecture fixtures run on the matrix's kernels, not on a custom one")
	}
	patches, err := filepath.Glob(filepath.Join(env.Repo, "kmod", "fixtures", "arch", "*.patch"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range patches {
		n := strings.TrimSuffix(filepath.Base(p), ".patch")
		if !slices.ContainsFunc(archFixtures, func(f archFixture) bool { return f.name == n }) {
			t.Errorf("kmod/fixtures/arch/%s.patch has no expectation in TestArchFixtures: say where it must be caught", n)
		}
	}
	matrix, err := kernels.LoadMatrix()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range archFixtures {
		patch := filepath.Join(env.Repo, "kmod", "fixtures", "arch", f.name+".patch")
		sel, err := kernels.Select(matrix, []string{f.caught, f.passes})
		if err != nil {
			t.Fatal(err)
		}
		if sel[0].Arch == sel[1].Arch {
			t.Fatalf("fixture %s: %s and %s are both %s: it must compare two architectures", f.name, f.caught, f.passes, sel[0].Arch)
		}
		for _, k := range sel {
			env.Prepare(t.Context(), k, patch)
		}
		for _, k := range sel {
			t.Run(f.name+"/"+k.Name, func(t *testing.T) {
				t.Parallel()
				out := bootTarget(t, harness.Job{
					Target: harness.Target{Kernel: k, Profile: "default"},
					Steps:  []string{contract.StepInsmod, f.step, contract.StepRmmod},
					Patch:  patch,
					Dir:    filepath.Join(env.Artifacts, "fixtures", f.name+"-"+k.Name),
				})
				if out.Build != nil {
					t.Fatalf("fixture %s does not build for %s: %v", f.name, k.Name, out.Build)
				}
				s, ok := out.Report.Step(f.step)
				if !ok {
					t.Fatalf("step %s was not run", f.step)
				}
				all := strings.Join(append(s.Reasons, s.Evidence...), "\n")
				switch {
				case k.Name == f.caught && !s.Failed():
					t.Fatalf("fixture %s: step %s passed on %s (%s); the detector did not fire", f.name, f.step, k.Name, k.Arch)
				case k.Name == f.caught && !f.reason.MatchString(all):
					t.Errorf("fixture %s: step %s failed on %s, but not for the expected reason (want a match for %q in):\n%s", f.name, f.step, k.Name, f.reason, all)
				case k.Name == f.caught:
					t.Logf("caught on %s (%s): step %s: %s", k.Name, k.Arch, f.step, s.Reasons[0])
				case s.Status != contract.StatusPass:
					t.Errorf("fixture %s: step %s is %s on %s (%s), where the bug must not show:\n%s", f.name, f.step, s.Status, k.Name, k.Arch, all)
				default:
					t.Logf("not caught on %s (%s), as expected: plain char differs", k.Name, k.Arch)
				}
			})
		}
	}
}
