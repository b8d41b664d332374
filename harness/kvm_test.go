package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/vm"
)

// The KVM path, tested without /dev/kvm (this project's machines have
// none that works): what KVM changes is checked here with fakes.

// TestBoundsSameUnderKVM: no hang verdict may fire sooner under KVM than
// under TCG. A KVM guest on a busy 2-vCPU runner is not reliably faster,
// and a full run is mostly wall-clock waits no accelerator shortens.
func TestBoundsSameUnderKVM(t *testing.T) {
	stock := Target{Kernel: kernels.Kernel{Name: "6.1"}}
	debug := Target{Kernel: kernels.Kernel{Name: "6.12-debug", Source: &kernels.SourceBuild{}}}
	// The prober's longest step timeout and its grace before it reports
	// a step it abandoned (guest/prober/runner_linux.go).
	const longestStep, grace = 60 * time.Second, 5 * time.Second
	for _, tg := range []Target{stock, debug} {
		kvm, tcg := VMConfig(tg, vm.AccelKVM, 0), VMConfig(tg, vm.AccelTCG, 0)
		if kvm.Timeout != tcg.Timeout || kvm.StepTimeout != tcg.StepTimeout || kvm.AlarmSilence != tcg.AlarmSilence {
			t.Errorf("%s: KVM bounds (run %s, silence %s, after a report %s) differ from TCG's (%s, %s, %s)",
				tg.Name(), kvm.Timeout, kvm.StepTimeout, kvm.AlarmSilence, tcg.Timeout, tcg.StepTimeout, tcg.AlarmSilence)
		}
		min := (longestStep + grace) * time.Duration(slowdown(tg))
		if kvm.StepTimeout <= min {
			t.Errorf("%s: silence bound %s is not above the prober's longest step and grace (%s)", tg.Name(), kvm.StepTimeout, min)
		}
		if kvm.Timeout <= kvm.StepTimeout {
			t.Errorf("%s: run bound %s is not above the silence bound %s", tg.Name(), kvm.Timeout, kvm.StepTimeout)
		}
	}
	if got := VMConfig(stock, vm.AccelKVM, 0).CPUModel(); got != "host" {
		t.Errorf("the default CPU under KVM is %q, want host", got)
	}
	epyc := stock
	epyc.CPU = "EPYC-Milan"
	if got := VMConfig(epyc, vm.AccelKVM, 0).CPUModel(); got != "EPYC-Milan" {
		t.Errorf("a named CPU under KVM runs as %q", got)
	}
}

// fakeQEMU writes a script that stands in for QEMU's KVM start.
func fakeQEMU(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// qmpFake answers QMP on stdio as QEMU does; abortAt names the command
// on which it aborts instead, as QEMU does on a host whose KVM cannot set
// the guest's MSRs ("" answers everything).
func qmpFake(abortAt string) string {
	if abortAt == "" {
		abortAt = "never-sent"
	}
	return `echo '{"QMP": {"version": {}, "capabilities": []}}'
while read line; do
	case "$line" in
	*` + abortAt + `*) echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69" >&2; exit 134;;
	*query-status*) echo '{"return": {"status": "running", "singlestep": false, "running": true}}';;
	*cont*) echo '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"}'; echo '{"return": {}}';;
	*) echo '{"return": {}}';;
	esac
done`
}

func TestDetectAccel(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "kvm")
	if err := os.WriteFile(dev, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, dev, qemu string
		want            vm.Accel
		why             string
	}{
		{"no device", filepath.Join(t.TempDir(), "none"), fakeQEMU(t, qmpFake("")), vm.AccelTCG, "no usable"},
		{"QEMU aborts as it sets the machine up", dev,
			fakeQEMU(t, `echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0" >&2; exit 1`), vm.AccelTCG, "setting up the machine: exit status 1: qemu-system-x86_64: error: failed to set MSR 0x10a"},
		{"QEMU aborts when its vCPUs start (nested virtualisation)", dev, fakeQEMU(t, qmpFake("cont")), vm.AccelTCG, "starting the vCPUs: exit status 134"},
		{"QEMU aborts once the vCPUs ran", dev, fakeQEMU(t, qmpFake("query-status")), vm.AccelTCG, "running the vCPUs"},
		{"QEMU exits at once without a word", dev, fakeQEMU(t, "exit 0"), vm.AccelTCG, "exited at once"},
		// Slow to answer, as on a loaded host: still KVM, not a guess.
		{"QEMU runs, slowly", dev, fakeQEMU(t, "sleep 1\n"+qmpFake("")), vm.AccelKVM, "works"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, why := detectAccel(t.Context(), tt.dev, tt.qemu, 50*time.Millisecond)
			if got != tt.want || !strings.Contains(why, tt.why) {
				t.Errorf("detectAccel = %s (%s), want %s (%s)", got, why, tt.want, tt.why)
			}
		})
	}
}
