package vm

import (
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/internal/arch"
)

// TestJobPorts: each architecture's job port is a device its guest has
// without udev, and arm64's sits on the result port's virtio-serial
// device, after it (hvc1 beside hvc0).
func TestJobPorts(t *testing.T) {
	if JobPort("") != contract.JobPort || JobPort(arch.AMD64) != contract.JobPort || JobPort(arch.ARM64) != contract.VirtioJobPort {
		t.Errorf("job ports: default %s, amd64 %s, arm64 %s", JobPort(""), JobPort(arch.AMD64), JobPort(arch.ARM64))
	}
	if got := strings.Join(machines[arch.AMD64].jobPort("job"), " "); got != "-serial chardev:job" {
		t.Errorf("amd64 job port args %q, want a third UART", got)
	}
	arm := machines[arch.ARM64]
	for _, transport := range []string{VirtioPCI, VirtioMMIO} {
		args := append(arm.port("/r", transport), arm.jobPort("job")...)
		cmd, err := qemuCmdline("qemu-system-aarch64", arm, Config{Kernel: "/k", Initramfs: "/i"}, args...)
		if err != nil {
			t.Fatal(err)
		}
		line := strings.Join(cmd, " ")
		results, job := strings.Index(line, "virtconsole,chardev=results"), strings.Index(line, "virtconsole,chardev=job")
		if results < 0 || job < results {
			t.Errorf("%s: the job console must follow the result console on one bus (hvc1): %s", transport, line)
		}
		if strings.Count(line, "virtio-serial") != 1 {
			t.Errorf("%s: want one virtio-serial device for both consoles: %s", transport, line)
		}
	}
}

// TestMachineIDArm64: a saved arm64 guest is keyed by its ports' bus
// (QEMU refuses a state whose devices differ) and, under KVM, by the
// host CPU; an amd64 ID stays as it was, without its UARTs.
func TestMachineIDArm64(t *testing.T) {
	arm := machines[arch.ARM64]
	id := func(accel Accel, transport, host string) string {
		t.Helper()
		s, err := machineID("QEMU emulator version 7.2.22", host, "qemu-system-aarch64", arm,
			Config{Arch: arch.ARM64, Accel: accel, VirtioTransport: transport, Kernel: "k", Initramfs: "i"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if id(AccelTCG, VirtioPCI, "") == id(AccelTCG, VirtioMMIO, "") {
		t.Error("arm64 guests over virtio-pci and virtio-mmio have one key")
	}
	if id(AccelTCG, "", "") != id(AccelTCG, VirtioPCI, "") {
		t.Error("the default transport (pci) and pci have two keys")
	}
	if got := id(AccelTCG, VirtioMMIO, ""); !strings.Contains(got, "virtconsole,chardev=JOB") || strings.Contains(got, "path=/") {
		t.Errorf("arm64 ID should name the port devices but no host path: %s", got)
	}
	a, b := hostCPU("CPU implementer\t: 0x41\nCPU part\t: 0xd0c\nFeatures\t: fp asimd\n"), hostCPU("CPU implementer\t: 0x41\nCPU part\t: 0xd40\nFeatures\t: fp asimd sve\n")
	if id(AccelKVM, "", a) == id(AccelKVM, "", b) {
		t.Error("KVM guests saved on two arm64 hosts have one key")
	}
	if id(AccelTCG, "", a) != id(AccelTCG, "", b) {
		t.Error("a TCG arm64 guest's key depends on the host CPU")
	}
	amd, err := machineID("QEMU emulator version 7.2.22", "", "qemu-system-x86_64", machines[arch.AMD64], Config{Kernel: "k", Initramfs: "i"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(amd, "ports") || strings.Contains(amd, "-serial") && strings.Contains(amd, "file:") {
		t.Errorf("amd64 ID names its serial ports: %s", amd)
	}
}
