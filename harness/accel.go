package harness

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/internal/proc"
	"github.com/kmodtest/kmodtest/vm"
)

// DetectAccel picks KVM when /dev/kvm opens and QEMU can really start a
// KVM vCPU with it, and TCG otherwise, with the reason. An openable
// /dev/kvm is not enough: under nested virtualisation QEMU may abort on
// its first MSR write, which the probe run catches in a fraction of a
// second.
func DetectAccel(ctx context.Context, qemuBin string) (vm.Accel, string) {
	return detectAccel(ctx, "/dev/kvm", qemuBin, 1500*time.Millisecond)
}

// detectAccel is DetectAccel with the KVM device and the time a working
// QEMU must stay up given.
func detectAccel(ctx context.Context, dev, qemuBin string, wait time.Duration) (vm.Accel, string) {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return vm.AccelTCG, "no usable " + dev + " (" + err.Error() + ")"
	}
	f.Close()

	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	cmd := proc.Command(ctx, qemuBin, "-accel", "kvm", "-cpu", "host", "-S",
		"-nodefaults", "-display", "none", "-monitor", "none", "-serial", "none")
	out, err := proc.CombinedOutput(cmd)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Still running after the wait: KVM works.
		return vm.AccelKVM, "/dev/kvm works"
	}
	msg, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err == nil {
		err = errors.New("exited at once")
	}
	return vm.AccelTCG, "/dev/kvm is present but QEMU cannot use it: " + err.Error() + ": " + msg
}
