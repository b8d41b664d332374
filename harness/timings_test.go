package harness

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/vm"
)

func TestTimingsRoundTrip(t *testing.T) {
	k510 := kernels.Kernel{Name: "5.10"}
	r := &Report{Accel: vm.AccelTCG}
	r.Add(Row{Name: "5.10-hardened", Target: Target{Kernel: k510, Profile: "hardened"}, CPU: "qemu64",
		Timings:      []time.Duration{10 * time.Millisecond, 0, 2919 * time.Millisecond, 6 * time.Millisecond, 3213 * time.Millisecond, 425 * time.Millisecond},
		KernelCached: true, Steps: map[string]string{StepBuild: contract.StatusPass, contract.StepRoundTrip: contract.StatusPass},
		RoundTrips: &contract.RoundTrips{Count: 300, Module: contract.Latency{MedianNS: 27000, P99NS: 189000}, Kernel: contract.Latency{MedianNS: 26000, P99NS: 262000}, Reference: "rtnetlink"}})
	r.Add(Row{Name: "5.10 no-ack", Target: Target{Kernel: k510, Profile: "hardened"}, Fixture: "no-ack",
		Timings: []time.Duration{0, 0, time.Second}, Steps: map[string]string{StepBuild: contract.StatusFail}})
	dir := t.TempDir()
	if err := r.writeTimings(dir); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTimings(dir + "/" + TimingsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := Timings{Accel: "tcg", Targets: []TargetTiming{
		{Target: "5.10-hardened", Kernel: "5.10", Profile: "hardened", CPU: "qemu64", Fetch: 0.01, Module: 2.919, Initramfs: 0.006, Boot: 3.213, Probe: 0.425, KernelCached: true, Built: true,
			RoundTrips: &contract.RoundTrips{Count: 300, Module: contract.Latency{MedianNS: 27000, P99NS: 189000}, Kernel: contract.Latency{MedianNS: 26000, P99NS: 262000}, Reference: "rtnetlink"}},
		{Target: "5.10-hardened", Kernel: "5.10", Profile: "hardened", Fixture: "no-ack", Module: 1},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestReadTimingsNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(p, []byte("timings (seconds)"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadTimings(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "want the timings.json a run writes") {
		t.Fatalf("got %v, want an error naming %s and what to give instead", err, p)
	}
}
