package harness

import (
	"strings"
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

func TestSlowestFirst(t *testing.T) {
	stock := func(name string) Target { return Target{Kernel: kernels.Kernel{Name: name}} }
	debug := Target{Kernel: kernels.Kernel{Name: "6.12-debug", Source: &kernels.SourceBuild{}}}
	in := []Target{stock("5.10"), stock("6.1"), debug, stock("7.3")}
	var got []string
	for _, tg := range SlowestFirst(in) {
		got = append(got, tg.Kernel.Name)
	}
	if want := "6.12-debug 5.10 6.1 7.3"; strings.Join(got, " ") != want {
		t.Errorf("SlowestFirst: got %q, want %q", got, want)
	}
	if in[2].Kernel.Name != "6.12-debug" {
		t.Error("SlowestFirst changed its argument")
	}
}
