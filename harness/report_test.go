package harness

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/vm"
)

func TestReport(t *testing.T) {
	r := &Report{Accel: vm.AccelTCG, Steps: []string{contract.StepInsmod, contract.StepReply}}
	if got := r.String(); got != "" {
		t.Fatalf("empty report = %q, want nothing", got)
	}
	var wg sync.WaitGroup
	for _, row := range []Row{
		{Name: "7.2", CPU: "qemu64", Timings: []time.Duration{time.Second, 0, 0, 0, 2 * time.Second, 0}, Steps: map[string]string{StepBuild: "pass", "boot": "pass", "insmod": "pass", "reply": "fail", "kernel-log": "pass"}, First: "reply",
			RoundTrips: &contract.RoundTrips{Module: contract.Latency{MedianNS: 27400}, Kernel: contract.Latency{MedianNS: 25500}}},
		{Name: "6.1", Steps: map[string]string{StepBuild: "fail"}, First: StepBuild},
		{Name: "6.1 no-ack", Fixture: "no-ack", Steps: map[string]string{"reply": "fail"}, First: "reply"},
		{Name: "6.1 leak", Fixture: "leak", Steps: map[string]string{"reply": "pass"}},
	} {
		wg.Go(func() { r.Add(row) })
	}
	wg.Wait()
	got := r.String()
	for _, want := range []string{
		"timings (seconds; accelerator tcg):",
		"7.2                    qemu64            1.00    0.00    0.00    0.00    2.00    0.00",
		"   1 build\n   2 boot\n   3 insmod\n   4 reply\n   5 kernel-log\n",
		"6.1                      F  -  -  -  -\n7.2                      .  .  .  F  .\n",
		"first failure: 6.1: build\n",
		"round trip on 7.2: module median 27 µs, kernel 26 µs (1.07x)\n",
		"  6.1 leak               NOT CAUGHT: every step passed\n  6.1 no-ack             first failing step: reply\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

func TestReportSummaryAlone(t *testing.T) {
	r := &Report{Steps: []string{contract.StepInsmod}}
	if got := r.Summary(); got != "" {
		t.Fatalf("empty summary = %q, want nothing", got)
	}
	r.Add(Row{Name: "6.1", Steps: map[string]string{StepBuild: "pass", "boot": "pass", "insmod": "fail"}, First: "insmod"})
	got := r.Summary()
	if strings.Contains(got, "timings") || !strings.Contains(got, "6.1                      .  .  F  -\nfirst failure: 6.1: insmod\n") {
		t.Errorf("summary:\n%s", got)
	}
	if full := r.String(); !strings.HasSuffix(full, got) {
		t.Errorf("String does not end with Summary:\n%s", full)
	}
}

// TestReportWholeRun: the report gives the whole run's time and how the
// guests started: the figure a user quotes for "the matrix took N s".
func TestReportWholeRun(t *testing.T) {
	r := &Report{Steps: []string{contract.StepInsmod}, Started: time.Now().Add(-12 * time.Second)}
	r.Add(Row{Name: "6.1", Guest: GuestRestored, Steps: map[string]string{StepBuild: "pass"}})
	r.Add(Row{Name: "6.1-arm64", Guest: GuestBooted, Steps: map[string]string{StepBuild: "pass"}})
	got := r.String()
	if !strings.Contains(got, "whole run: 12.") || !strings.Contains(got, "(guests: 1 booted, 1 restored, 0 saved)") {
		t.Errorf("report lacks the whole run's line:\n%s", got)
	}
	if tm := r.Timings(); tm.Elapsed < 12 || tm.Elapsed > 60 {
		t.Errorf("timings.json elapsed = %v, want about 12", tm.Elapsed)
	}
}
