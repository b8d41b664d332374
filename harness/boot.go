package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/bootimage"
	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/initramfs"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/verdict"
	"github.com/kmodtest/kmodtest/vm"
)

// Bounds on a run, the same under KVM as under TCG: a KVM guest on a
// busy 2-core runner is not reliably faster than a TCG one here (its
// vCPUs wait for host CPUs like any thread), and most of a full run is
// wall-clock waiting that no accelerator shortens (answer timeouts, the
// greeting log's rate-limit interval, steps abandoned at their timeout).
// A bound is a hang detector, not a speed check: shrinking it under KVM
// would turn a slow host into a verdict on the module. The bound on the
// prober's silence is the contract's (contract.SilenceLimit), derived
// from its step table, so that a slow step is reported by the prober,
// not as a hang.
const (
	runTimeout = 240 * time.Second
	// alarmSilence bounds the wait once the console showed a kernel
	// report: the prober answers within seconds unless the report killed it.
	alarmSilence = 30 * time.Second
	// sanitizerSlowdown stretches both bounds for a kernel the harness
	// builds (6.12-debug): KASAN, lockdep and kmemleak's scans (up to a
	// minute after a step) make its full run several times slower
	// (docs/performance.md).
	sanitizerSlowdown = 3
)

// slowdown is the factor by which tg's runs are slower than a stock
// kernel's: the prober's step timeouts and the host's bounds grow with it.
func slowdown(tg Target) int {
	if tg.Kernel.Source != nil {
		return sanitizerSlowdown
	}
	return 1
}

// Boot is one boot of one target with one module.
type Boot struct {
	Target Target
	Kernel *kernels.Fetched
	// Image is what QEMU boots: the ELF vmlinux kernels.Cache.BootImage
	// extracts, or the kernel's own image (Kernel.Vmlinuz) when empty.
	Image string
	// Port is how an arm64 guest gets its result port
	// (kernels.ResultPort); nil for amd64.
	Port *bootimage.VirtioPort
	// Ko is the module to load; Base the shared base image.
	Ko   string
	Base string
	// Steps to run; Dir receives the artifacts.
	Steps []string
	Dir   string
	Accel vm.Accel
	// Rerun returns the command that reruns this target, narrowed to
	// one step's subtest when step is not empty; nil when there is none.
	Rerun func(step string) string
	// Silence, when set, replaces the default bound on the time between
	// two events from the prober (a test that expects a hang need not
	// wait the full default).
	Silence time.Duration
	// GcovSnapshots makes the prober send the module's gcov data after
	// every step (contract.Config.GcovSnapshots): set for a module built
	// with gcov profiling.
	GcovSnapshots bool
	// BootModules are modules the guest loads while it boots, before the
	// module under test: whatever they print is the boot's.
	BootModules []string
}

// Result is what a Boot produced.
type Result struct {
	Report *verdict.Report
	Output *vm.Output
	// Initramfs and Boot are the times to compose the image and to run
	// the VM.
	Initramfs time.Duration
	Boot      time.Duration
}

// Run composes the initramfs, boots the VM and judges what it printed.
// Everything needed to look at a failure again lands in b.Dir, which
// should be new: files of an earlier boot there are overwritten.
func (b Boot) Run(ctx context.Context) (*Result, error) {
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create artifacts dir: %w", err)
	}
	res := &Result{}

	start := time.Now()
	initrd := filepath.Join(b.Dir, "initramfs.cpio")
	cfg := GuestConfig(b.Target)
	cfg.Steps, cfg.GcovSnapshots = b.Steps, b.GcovSnapshots
	files, portModules, transport := portFiles(b.Port)
	files = append([]initramfs.File{{Source: b.Ko, Target: ModuleInGuest}}, files...)
	cfg.PortModules = append(cfg.PortModules, portModules...)
	for _, ko := range b.BootModules {
		target := initramfs.ModuleDir + "/boot/" + filepath.Base(ko)
		files = append(files, initramfs.File{Source: ko, Target: target})
		cfg.PortModules = append(cfg.PortModules, target)
	}
	if err := initramfs.Compose(initrd, b.Base, cfg, files); err != nil {
		return nil, fmt.Errorf("compose initramfs: %w", err)
	}
	if err := copyFile(b.Ko, filepath.Join(b.Dir, filepath.Base(b.Ko))); err != nil {
		return nil, err
	}
	res.Initramfs = time.Since(start)

	start = time.Now()
	image := b.Image
	if image == "" {
		image = b.Kernel.Vmlinuz
	}
	vcfg := VMConfig(b.Target, b.Accel, b.Silence)
	vcfg.Kernel, vcfg.Initramfs, vcfg.Dir, vcfg.VirtioTransport = image, initrd, b.Dir, transport
	run, err := vm.Boot(ctx, vcfg)
	if err != nil {
		return nil, fmt.Errorf("boot %s: %w", b.Target.Name(), err)
	}
	res.Boot = time.Since(start)
	res.Output = run

	res.Report = Judge(run, b.Steps)
	return res, nil
}

// VMConfig is the machine, the timeouts and the alarm of a target's
// runs, booted or restored; the caller adds the files.
func VMConfig(tg Target, accel vm.Accel, silence time.Duration) vm.Config {
	timeout := runTimeout * time.Duration(slowdown(tg))
	silent := contract.SilenceLimit(slowdown(tg))
	if silence > 0 {
		silent = silence
	}
	return vm.Config{
		Arch:         tg.Kernel.Arch,
		Append:       Profiles[tg.Profile],
		Accel:        accel,
		Timeout:      timeout,
		StepTimeout:  silent,
		Alarm:        alarm,
		AlarmSilence: alarmSilence,
		SMP:          tg.SMP(),
		MemoryMB:     tg.Kernel.MemoryMB,
		CPU:          tg.CPU,
	}
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy %s to artifacts: %w", src, err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return fmt.Errorf("copy %s to artifacts: %w", src, err)
	}
	return nil
}

// ShellLine returns the kmodtest shell command that boots this target
// with this boot's module (its copy in the artifacts) loaded, to look at
// a failure by hand; "" for architectures shell does not boot.
func (b Boot) ShellLine() string {
	if b.Kernel == nil || (b.Target.Kernel.Arch != "" && b.Target.Kernel.Arch != arch.AMD64) {
		return ""
	}
	words := []string{"kmodtest", "shell", "-kernels", b.Target.Kernel.Name}
	if strings.HasPrefix(b.Target.Kernel.Name, "custom-") {
		words = []string{"kmodtest", "shell", "-kernel", b.Kernel.Vmlinuz, "-kdir", b.Kernel.KDIR}
	}
	if b.Target.Profile != "" && b.Target.Profile != "default" {
		words = append(words, "-profile", b.Target.Profile)
	}
	if b.Target.CPU != "" && b.Target.CPU != b.Target.Kernel.CPU {
		words = append(words, "-guest-cpu", b.Target.CPU)
	}
	// Quoted like the rerun line: an artifacts path may hold a space.
	return shellJoin(append(words, "-ko", filepath.Join(b.Dir, filepath.Base(b.Ko))))
}

// FailureText formats a failed step for a test log: the reasons, the kernel
// lines behind them, and where to look and how to rerun.
func FailureText(s verdict.Step, b Boot, run *vm.Output) string {
	var w strings.Builder
	for _, r := range s.Reasons {
		fmt.Fprintf(&w, "%s\n", r)
	}
	if len(s.Evidence) > 0 {
		fmt.Fprintf(&w, "kernel lines:\n")
		for _, l := range s.Evidence {
			fmt.Fprintf(&w, "    %s\n", l)
		}
	}
	if run != nil && len(run.Stderr) > 0 {
		fmt.Fprintf(&w, "QEMU said:\n")
		for _, l := range run.Stderr {
			fmt.Fprintf(&w, "    %s\n", l)
		}
	}
	fmt.Fprintf(&w, "artifacts: %s%s\n", b.Dir, artifactList(b.Dir))
	if b.Rerun != nil {
		fmt.Fprintf(&w, "rerun: %s\n", b.Rerun(s.Name))
	}
	if line := b.ShellLine(); line != "" {
		fmt.Fprintf(&w, "shell: %s\n", line)
	}
	if run != nil {
		fmt.Fprintf(&w, "QEMU: %s", run.Cmdline)
	}
	return w.String()
}

// artifactList names what dir holds, as " (a, b, c)": only what the run
// really left there (a restored run has no initramfs.cpio of its own, a
// watch run no rerun.sh); "" when it holds nothing or cannot be read.
func artifactList(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return ""
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
		if e.IsDir() {
			names[i] += "/"
		}
	}
	return " (" + strings.Join(names, ", ") + ")"
}

// SlowestFirst returns targets with the slow ones (a higher slowdown)
// first, the rest in their order: parallel tests started in that order
// keep the longest run from starting last and finishing alone.
func SlowestFirst(targets []Target) []Target {
	out := slices.Clone(targets)
	slices.SortStableFunc(out, func(a, b Target) int { return slowdown(b) - slowdown(a) })
	return out
}
