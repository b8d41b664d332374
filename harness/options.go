package harness

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/vm"
)

// Options are the settings of one run of the VM tests. Register adds them
// to any flag.FlagSet (go test's, or a command's own); each flag's
// default comes from its environment variable, read when Register is
// called. The zero Options are the defaults: every kernel of the matrix,
// the core steps, the accelerator detected, artifacts/ in the repository.
type Options struct {
	// Kernels is a comma-separated list of matrix kernels; "" is all.
	Kernels string
	// Steps is StepsCore or StepsFull; "" is StepsCore.
	Steps string
	// Kernel and KDIR bring one's own kernel: a kernel image and the
	// built tree to compile the module against. Both or neither.
	Kernel string
	KDIR   string
	// Accel is "kvm", "tcg", or "" to detect.
	Accel string
	// CPU is the guest CPU model of every target whose QEMU offers it
	// ("EPYC-Milan"); "" keeps each target's own (its matrix entry's, or
	// the accelerator's default).
	CPU string
	// Fixtures also runs the checks of the harness itself (TestFixtures
	// and the broken build).
	Fixtures bool
	// ArtifactsDir is where each run's directory goes; "" is
	// artifacts/ at the repository root.
	ArtifactsDir string
	// Update compares every cached kernel with what Debian now
	// publishes and moves to a newer one (kernels.Cache.Update).
	Update bool
	// Boot boots every guest instead of restoring a saved one.
	Boot bool
	// DebugKernel builds the matrix's sanitizer kernel when it is not
	// cached yet (once; docs/performance.md has how long it takes);
	// without it an unbuilt one is skipped with a line saying how to
	// build it.
	DebugKernel bool
}

// The values of Options.Steps.
const (
	StepsCore = "core"
	StepsFull = "full"
)

// A Setting is one option: its flag, the environment variable that gives
// its default, and what it does. Settings is the list the flags, the
// documentation and the rerun line are made from.
type Setting struct {
	Flag  string
	Env   string
	Usage string
	// Bool settings are switches (-fixtures); their variable is on when "1".
	Bool bool
	// value points at the field of an Options.
	value func(o *Options) any
}

// Settings lists every option, in the order of vmtests/doc.go.
var Settings = []Setting{
	{Flag: "kernels", Env: "KMODTEST_KERNELS", Usage: "comma-separated kernels of the matrix to run (default: all)",
		value: func(o *Options) any { return &o.Kernels }},
	{Flag: "steps", Env: "KMODTEST_STEPS", Usage: "core (load, greet, ack, unload) or full (every scenario; make test and CI) (default: core)",
		value: func(o *Options) any { return &o.Steps }},
	{Flag: "kernel", Env: "KMODTEST_KERNEL", Usage: "bring your own kernel: path to its image, an ELF vmlinux or a bzImage (needs -kdir)",
		value: func(o *Options) any { return &o.Kernel }},
	{Flag: "kdir", Env: "KMODTEST_KDIR", Usage: "bring your own kernel: its built source tree",
		value: func(o *Options) any { return &o.KDIR }},
	{Flag: "accel", Env: "KMODTEST_ACCEL", Usage: "kvm or tcg (default: KVM when QEMU can use it)",
		value: func(o *Options) any { return &o.Accel }},
	{Flag: "guest-cpu", Env: "KMODTEST_CPU", Usage: "guest CPU model, as QEMU's -cpu names it (Skylake-Client, EPYC-Milan, …; `qemu-system-x86_64 -cpu help`) (default: the matrix entry's, else qemu64 under TCG and host under KVM)",
		value: func(o *Options) any { return &o.CPU }},
	{Flag: "fixtures", Env: "KMODTEST_FIXTURES", Bool: true, Usage: "also prove the harness: broken-module fixtures and a broken build (TestFixtures, TestBuildErrorShowsCompilerLines)",
		value: func(o *Options) any { return &o.Fixtures }},
	{Flag: "artifacts-dir", Env: "KMODTEST_ARTIFACTS", Usage: "where each run's directory of logs, images and rerun commands goes (default: artifacts/ at the repository root)",
		value: func(o *Options) any { return &o.ArtifactsDir }},
	{Flag: "update", Env: "KMODTEST_UPDATE", Bool: true, Usage: "move cached kernels to the newest Debian publishes (without it they are compared at most daily, and a newer one is only reported)",
		value: func(o *Options) any { return &o.Update }},
	{Flag: "boot", Env: "KMODTEST_BOOT", Bool: true, Usage: "boot every guest instead of restoring the one saved for its kernel, initramfs, QEMU, machine and accelerator",
		value: func(o *Options) any { return &o.Boot }},
	{Flag: "debug-kernel", Env: DebugKernelEnv, Bool: true, Usage: "build the sanitizer kernel 6.12-debug if it is not cached yet (a long one-time build, see docs/performance.md); without it an unbuilt one is skipped",
		value: func(o *Options) any { return &o.DebugKernel }},
}

// Register defines o's flags on fs, with defaults from the environment
// (getenv; nil means os.Getenv).
func (o *Options) Register(fs *flag.FlagSet, getenv func(string) string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, s := range Settings {
		switch p := s.value(o).(type) {
		case *string:
			fs.StringVar(p, s.Flag, getenv(s.Env), s.Usage+" ["+s.Env+"]")
		case *bool:
			fs.BoolVar(p, s.Flag, getenv(s.Env) == "1", s.Usage+" ["+s.Env+"=1]")
		}
	}
}

// StepNames returns the probe steps Steps selects.
func (o Options) StepNames() ([]string, error) {
	switch o.Steps {
	case "", StepsCore:
		return contract.CoreSteps, nil
	case StepsFull:
		return contract.FullSteps, nil
	}
	return nil, fmt.Errorf("-steps %q: want %s or %s", o.Steps, StepsCore, StepsFull)
}

// KernelNames returns the kernels Kernels names, each once (two targets
// of one name would share an artifacts directory), nil for all.
func (o Options) KernelNames() []string {
	if o.Kernels == "" {
		return nil
	}
	var names []string
	for _, n := range strings.Split(o.Kernels, ",") {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// Validate checks the options that need no file system: a bad value is
// an error naming the flag and what it accepts.
func (o Options) Validate() error {
	if _, err := o.StepNames(); err != nil {
		return err
	}
	switch o.Accel {
	case "", string(vm.AccelKVM), string(vm.AccelTCG):
	default:
		return fmt.Errorf("-accel %q: want kvm or tcg", o.Accel)
	}
	if (o.Kernel == "") != (o.KDIR == "") {
		return errors.New("bring your own kernel needs both -kernel (its image) and -kdir (its built tree)")
	}
	if o.Kernel != "" && o.Kernels != "" {
		return errors.New("-kernels picks matrix kernels and -kernel brings your own: give one of them")
	}
	return nil
}

// Args returns the flags that give o's non-default values, in the order
// of Settings: what a command line must say to make these options.
func (o Options) Args() []string {
	var args []string
	for _, s := range Settings {
		switch p := s.value(&o).(type) {
		case *string:
			if *p != "" {
				args = append(args, "-"+s.Flag, *p)
			}
		case *bool:
			if *p {
				args = append(args, "-"+s.Flag)
			}
		}
	}
	return args
}
