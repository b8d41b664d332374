// Package vm boots one kernel image (for amd64 the ELF vmlinux the cache
// extracts, or a bzImage; for arm64 an Image) with one initramfs under
// QEMU, with the command line hugelgupf/vmtest's qemu package builds, and
// collects what came out of it: the console, the prober's events from the
// result port and QEMU's own stderr. On amd64 console and result port are
// two UARTs (ttyS0, ttyS1); arm64's virt board has one (the PL011,
// ttyAMA0), so there the results go to a virtio console (hvc0).
//
// A guest that panics ends QEMU at once (panic=-1 with -no-reboot). A guest
// that stops sending events for StepTimeout, or runs past Timeout, is
// killed and the run is marked as hung, with the step it was on.
package vm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hugelgupf/vmtest/qemu"
	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/internal/arch"
)

// Accel is how QEMU runs the guest's CPU.
type Accel string

const (
	AccelKVM Accel = "kvm"
	AccelTCG Accel = "tcg"
)

// Virtio transports for Config.VirtioTransport.
const (
	VirtioPCI  = "pci"
	VirtioMMIO = "mmio"
)

// A machine is how QEMU emulates one guest architecture: the binary, the
// board and CPU, the kernel's console, and the second channel that carries
// the prober's results apart from kernel messages.
type machine struct {
	qemu string
	arch qemu.Arch
	// tcg and kvm are the machine arguments per accelerator, and
	// tcgCPU the CPU model TCG emulates unless Config.CPU names one
	// (under KVM it is "host": the guest sees the host's CPU).
	tcg, kvm []string
	tcgCPU   string
	console  string
	// guestPort is the result port's device in the guest.
	guestPort string
	// port returns the QEMU arguments that give the guest its result
	// port, with its bytes landing in path.
	port func(path, transport string) []string
	// guestJobPort is the job port's device in the guest, and jobPort
	// the QEMU arguments that give a saved or restored guest its job
	// port, connected to the chardev with the given id. They follow
	// port's arguments: arm64's job port joins the result port's bus.
	guestJobPort string
	jobPort      func(chardev string) []string
	// append holds kernel parameters only this architecture needs.
	append []string
}

// machines are the guest architectures Boot knows.
var machines = map[arch.Arch]machine{
	arch.AMD64: {
		qemu: "qemu-system-x86_64",
		arch: qemu.ArchAMD64,
		// Under TCG every emulated CPU feature costs: qemu64 boots
		// about 20 % faster than -cpu max (medians of 5, 6.1).
		tcgCPU:    "qemu64",
		kvm:       []string{"-enable-kvm"},
		console:   "ttyS0",
		guestPort: contract.ResultPort,
		// A second 16550 UART, ttyS1.
		port: func(path, _ string) []string { return []string{"-serial", "file:" + path} },
		// A third UART, ttyS2.
		guestJobPort: contract.JobPort,
		jobPort:      func(chardev string) []string { return []string{"-serial", "chardev:" + chardev} },
		// no_timer_check skips the IO-APIC timer check, which a TCG
		// guest on a loaded host can fail ("Kernel panic - not
		// syncing: IO-APIC + timer doesn't work!", seen with six VMs
		// on two cores); cloud images boot with it for the same reason.
		append: []string{"edd=off", "no_timer_check"},
	},
	arch.ARM64: {
		qemu: "qemu-system-aarch64",
		arch: qemu.ArchArm64,
		// The virt board with a CPU without pointer authentication,
		// which TCG emulates slowly.
		tcg:       []string{"-M", "virt"},
		tcgCPU:    "cortex-a57",
		kvm:       []string{"-M", "virt", "-enable-kvm"},
		console:   "ttyAMA0",
		guestPort: contract.VirtioResultPort,
		// virt has one UART (the PL011, the console): the results go
		// to a virtio console, hvc0, over virtio-pci or virtio-mmio
		// (Config.VirtioTransport).
		port: func(path, transport string) []string {
			bus := "virtio-serial-pci"
			if transport == VirtioMMIO {
				bus = "virtio-serial-device"
			}
			return []string{"-device", bus,
				"-chardev", "file,id=results,path=" + path,
				"-device", "virtconsole,chardev=results"}
		},
		// A second virtio console on the same virtio-serial device:
		// hvc1 (see contract.VirtioJobPort).
		guestJobPort: contract.VirtioJobPort,
		jobPort: func(chardev string) []string {
			return []string{"-device", "virtconsole,chardev=" + chardev}
		},
	},
}

// QEMUBinary returns the QEMU system that boots guests of arch ("" is
// amd64).
func QEMUBinary(a arch.Arch) string {
	if m, ok := machines[a]; ok {
		return m.qemu
	}
	return machines[arch.AMD64].qemu
}

// ResultPort returns the device the prober must write its events to on a
// guest of arch ("" is amd64).
func ResultPort(a arch.Arch) string {
	if m, ok := machines[a]; ok {
		return m.guestPort
	}
	return contract.ResultPort
}

// JobPort returns the device a waiting prober must read its job from on
// a guest of arch ("" is amd64).
func JobPort(a arch.Arch) string {
	if m, ok := machines[a]; ok {
		return m.guestJobPort
	}
	return contract.JobPort
}

// Config describes one boot.
type Config struct {
	// Arch is the guest's architecture, arch.AMD64 (the default) or
	// arch.ARM64.
	Arch arch.Arch
	// VirtioTransport is VirtioPCI (the default) or VirtioMMIO: the bus of
	// the virtio console that is arm64's result port.
	VirtioTransport string
	// QEMU is the QEMU binary; empty means the architecture's
	// (qemu-system-x86_64, qemu-system-aarch64).
	QEMU string
	// Kernel is the image to boot (an ELF vmlinux with a PVH entry, or a
	// bzImage), Initramfs the archive to give it.
	Kernel    string
	Initramfs string
	// Append holds extra kernel parameters (a boot profile's).
	Append []string
	Accel  Accel
	// CPU is the guest's CPU model (QEMU's -cpu: "Skylake-Client",
	// "EPYC-Milan", …); empty means the accelerator's default: "host"
	// under KVM, the architecture's plain model under TCG. The guest
	// kernel picks its CPU bugs and mitigations from the model, so a
	// named model shows what a laptop or a CI runner's guest prints.
	CPU string
	// Timeout bounds the whole boot; StepTimeout bounds the time between
	// two events from the prober (the first one included).
	Timeout     time.Duration
	StepTimeout time.Duration
	// Dir receives console.log, results.log, qemu-stderr.log and
	// qemu-cmdline.txt.
	Dir string
	// Alarm, when set, is called on every console line; once it returns
	// true, AlarmSilence replaces StepTimeout. A guest that printed an
	// Oops and went quiet has usually lost its prober: no need to wait
	// the full StepTimeout for it.
	Alarm        func(line string) bool
	AlarmSilence time.Duration
	// SMP is the number of vCPUs and MemoryMB the guest's memory; zero
	// means 1 vCPU and 512 MiB. Under TCG several vCPUs run on as many
	// host threads (multi-threaded TCG), so they really run in parallel.
	SMP      int
	MemoryMB int
	// Console is QEMU's -serial backend for the console; empty means
	// mon:stdio (QEMU's stdout, read into console.log).
	Console string
}

// Output is what one boot produced.
type Output struct {
	Events  []contract.Event
	Console []string
	// BadLines are result-port lines that carried the event prefix but
	// did not decode (for example, cut short by a panic).
	BadLines []string
	Cmdline  string
	Duration time.Duration
	// FirstEvent is when the prober's first event arrived (zero if
	// none): for a restored guest, the end of the restore and transfer.
	FirstEvent time.Time
	// Hung is set when the guest was killed for going silent or for
	// running past its timeout; HangReason says which.
	Hung       bool
	HangReason string
	// ExitErr is QEMU's exit status when it was not a clean power-off,
	// with its last stderr lines.
	ExitErr error
	// Stderr holds QEMU's last lines on stderr (its own complaints, such
	// as a kernel it cannot load); all of it is in qemu-stderr.log.
	Stderr []string
}

// ErrNoQEMU is returned when the QEMU binary cannot be found.
var ErrNoQEMU = errors.New("QEMU not found")

// qemuPackage names the Debian package that has a QEMU binary.
func qemuPackage(bin string) string {
	if strings.Contains(bin, "aarch64") || strings.HasSuffix(bin, "-arm") {
		return "qemu-system-arm"
	}
	return "qemu-system-x86"
}

// Boot runs the guest to its end and returns what it printed.
//
// vmtest's qemu package builds the command line; QEMU itself is started
// here, through internal/proc, so that it dies with the run (its own
// process group, killed when ctx is done, and PR_SET_PDEATHSIG), and so
// that its stderr, where QEMU says why it would not start, is kept apart
// from the console.
func Boot(ctx context.Context, cfg Config) (*Output, error) {
	p, err := startQEMU(ctx, cfg, launch{})
	if err != nil {
		return nil, err
	}
	return p.wait(ctx, cfg.Timeout)
}

// qemuCmdline returns the QEMU command line for cfg, built by vmtest's
// qemu package, with the result port (and any other arguments) in extra.
func qemuCmdline(bin string, m machine, cfg Config, extra ...string) ([]string, error) {
	smp, mem := max(cfg.SMP, 1), cfg.MemoryMB
	if mem <= 0 {
		mem = 512
	}
	qemuCmd := []string{bin, "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(smp), "-nodefaults"}
	switch cfg.Accel {
	case AccelKVM:
		qemuCmd = append(qemuCmd, m.kvm...)
	default:
		if smp > 1 {
			qemuCmd = append(qemuCmd, "-accel", "tcg,thread=multi")
		}
		qemuCmd = append(qemuCmd, m.tcg...)
	}
	qemuCmd = append(qemuCmd, "-cpu", cfg.cpuModel(m))
	o, err := qemu.OptionsFor(m.arch,
		qemu.WithQEMUCommand(strings.Join(qemuCmd, " ")),
		qemu.WithKernel(cfg.Kernel),
		qemu.WithInitramfs(cfg.Initramfs),
		// cryptomgr.notests skips the crypto self-tests at boot, about
		// 0.5 s of TCG time that tells nothing about the module.
		qemu.WithAppendKernel("console="+m.console, "cryptomgr.notests"),
		qemu.WithAppendKernel(m.append...),
		qemu.WithAppendKernel(cfg.Append...),
		qemu.HaltOnKernelPanic(),
		qemu.ArbitraryArgs("-serial", console(cfg)),
		qemu.ArbitraryArgs(extra...),
	)
	if err != nil {
		return nil, fmt.Errorf("QEMU options: %w", err)
	}
	cmdline, err := o.Cmdline()
	if err != nil {
		return nil, fmt.Errorf("QEMU command line: %w", err)
	}
	return cmdline, nil
}

// cpuModel returns the -cpu model the guest runs with.
func (cfg Config) cpuModel(m machine) string {
	switch {
	case cfg.CPU != "":
		return cfg.CPU
	case cfg.Accel == AccelKVM:
		return "host"
	default:
		return m.tcgCPU
	}
}

// CPUModel returns the CPU model a guest of cfg runs with: cfg.CPU, or
// the accelerator's default for cfg.Arch.
func (cfg Config) CPUModel() string {
	m, ok := machines[cfg.Arch]
	if !ok {
		m = machines[arch.AMD64]
	}
	return cfg.cpuModel(m)
}

// console returns the QEMU backend of the guest's console.
func console(cfg Config) string {
	if cfg.Console != "" {
		return cfg.Console
	}
	return "mon:stdio"
}

// quoteCmdline quotes the arguments that hold spaces, for a log.
func quoteCmdline(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t\n'") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
