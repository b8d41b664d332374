package vm

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// terminalMachine returns the machine and QEMU binary of a guest put on
// the user's terminal (kmodtest shell), which is amd64 only: the shell's
// guest is composed for amd64 (its prober, and no drivers or virtio
// transport for arm64's result port), and its gdb file is x86's.
func (cfg Config) terminalMachine() (machine, string, error) {
	if cfg.Arch != "" && cfg.Arch != arch.AMD64 {
		return machine{}, "", fmt.Errorf("kmodtest shell needs an amd64 kernel, not %s: it does not yet compose an arm64 guest (its prober, the drivers of its result port); for arm64 use go test ./vmtests or kmodtest watch", cfg.Arch)
	}
	return cfg.qemuMachine()
}

// MachineID describes what a saved guest depends on besides the kernel
// and initramfs files: QEMU's version, the accelerator, the command line
// without the serial ports (QEMU refuses a state saved from another
// machine; the serial backends may differ), the devices of arm64's
// virtio ports (their bus is the board's, not a backend) and, under KVM, the host's
// CPU, whose features the guest sees: a cache carried to a runner with
// another CPU must not restore a guest saved on the first. A TCG guest
// sees only its emulated model, so its ID holds nothing of the host.
// The kernel and initramfs appear as KERNEL and INITRD: the caller names
// them by content.
func MachineID(ctx context.Context, cfg Config) (string, error) {
	m, bin, err := cfg.qemuMachine()
	if err != nil {
		return "", err
	}
	out, err := proc.Output(proc.Command(ctx, bin, "--version"))
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", bin, err)
	}
	version, _, _ := strings.Cut(string(out), "\n")
	host := ""
	if cfg.Accel == AccelKVM {
		if host, err = readHostCPU(); err != nil {
			return "", err
		}
	}
	return machineID(version, host, bin, m, cfg)
}

// machineID is MachineID with QEMU's version and the host CPU (empty
// under TCG) given.
func machineID(version, hostCPU, bin string, m machine, cfg Config) (string, error) {
	cfg.Kernel, cfg.Initramfs = "KERNEL", "INITRD"
	args, err := qemuCmdline(bin, m, cfg)
	if err != nil {
		return "", err
	}
	accel := cfg.Accel
	if accel == "" {
		accel = AccelTCG
	}
	id := version + "\naccel " + string(accel) + "\ncpu " + cfg.cpuModel(m) + "\n" + strings.Join(args[1:], "\n")
	if cfg.Arch.OrDefault() == arch.ARM64 {
		// The result and job ports are virtio devices on a bus
		// (virtio-pci or virtio-mmio) that the guest saw. amd64's are
		// UARTs, which every amd64 machine has: its ID leaves them
		// out, as it always did, so that its saved guests stay valid.
		ports := append(m.port("RESULTS", cfg.VirtioTransport), m.jobPort("JOB")...)
		id += "\nports " + strings.Join(ports, " ")
	}
	if accel == AccelKVM {
		id += "\nhost cpu:\n" + hostCPU
	}
	return id, nil
}

// shortTempDir makes a directory for unix sockets, whose paths must stay
// under 108 bytes (a cache directory may be deep).
func shortTempDir() (string, error) {
	dir, err := os.MkdirTemp("", "kmodtest-")
	if err != nil {
		return "", fmt.Errorf("create socket dir: %w", err)
	}
	return dir, nil
}
