package harness

import (
	"testing"

	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/vm"
)

// TestTargetsBootWithTwoVCPUs checks that a matrix entry without smp gets
// DefaultSMP vCPUs on QEMU's command line, and that an entry's own smp wins.
func TestTargetsBootWithTwoVCPUs(t *testing.T) {
	for _, tc := range []struct {
		smp, want int
	}{{0, DefaultSMP}, {1, 1}, {4, 4}} {
		tg := Target{Kernel: kernels.Kernel{Name: "6.1", SMP: tc.smp}, Profile: "hardened"}
		if got := VMConfig(tg, vm.AccelTCG, 0).SMP; got != tc.want {
			t.Errorf("entry smp %d: VM gets %d vCPUs, want %d", tc.smp, got, tc.want)
		}
	}
	if DefaultSMP < 2 {
		t.Errorf("DefaultSMP is %d: the concurrency scenarios need at least 2 vCPUs to run in parallel", DefaultSMP)
	}
}
