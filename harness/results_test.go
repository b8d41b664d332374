package harness

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/runresults"
	"github.com/kmodtest/kmodtest/verdict"
	"github.com/kmodtest/kmodtest/vm"
)

func TestResults(t *testing.T) {
	r := &Report{Accel: vm.AccelTCG, Steps: []string{contract.StepInsmod, contract.StepReply}}
	rt := &contract.RoundTrips{Count: 300, Module: contract.Latency{MedianNS: 27590, P99NS: 371900}, Kernel: contract.Latency{MedianNS: 26200, P99NS: 500530}, Reference: "rtnetlink"}
	v := &verdict.Report{
		Kernel: "6.1.0-56-amd64",
		Boot:   verdict.Step{Name: verdict.BootStep, Status: contract.StatusPass},
		Steps: []verdict.Step{
			{Name: contract.StepInsmod, Status: contract.StatusPass, DurationMS: 212},
			{Name: contract.StepReply, Status: contract.StatusFail, DurationMS: 2004, Reasons: []string{"reply: no reply within 2s"}, Evidence: []string{"BUG: kernel NULL pointer dereference"}},
		},
		Log: verdict.Step{Name: verdict.LogStep, Status: contract.StatusSkip, Reasons: []string{"not judged"}},
	}
	r.Add(Row{Name: "6.1", Target: Target{Kernel: kernels.Kernel{Name: "6.1"}}, CPU: "qemu64", Guest: GuestRestored, Release: "6.1.0-56-amd64",
		Timings: []time.Duration{time.Second, 0, 2500 * time.Millisecond, 0, 1800 * time.Millisecond, 2 * time.Second},
		Steps:   map[string]string{StepBuild: contract.StatusPass}, Verdict: v, RoundTrips: rt})
	r.Add(Row{Name: "7.2", Target: Target{Kernel: kernels.Kernel{Name: "7.2", Arch: "arm64"}},
		Steps: map[string]string{StepBuild: contract.StatusFail}, BuildError: "build module for 7.2:\nerror: unknown type name 'foo'\n"})
	got := r.Results()
	if want := []string{"build", "boot", "insmod", "reply", "kernel-log"}; !reflect.DeepEqual(got.Steps, want) {
		t.Errorf("steps %q, want %q", got.Steps, want)
	}
	want := []runresults.Target{
		{Name: "6.1", Kernel: "6.1", Arch: "amd64", Release: "6.1.0-56-amd64", CPU: "qemu64", Guest: "restored", Status: "fail", Steps: []runresults.Step{
			{Name: "build", Status: "pass", Seconds: 3.5},
			{Name: "boot", Status: "pass", Seconds: 1.8},
			{Name: "insmod", Status: "pass", Seconds: 0.212},
			{Name: "reply", Status: "fail", Seconds: 2.004, Failure: []string{"reply: no reply within 2s", "kernel lines:", "BUG: kernel NULL pointer dereference"}},
			{Name: "kernel-log", Status: "skip", SkipReason: "not judged"},
		}, RoundTrips: rt},
		{Name: "7.2", Kernel: "7.2", Arch: "arm64", Status: "fail", Steps: []runresults.Step{
			{Name: "build", Status: "fail", Failure: []string{"build module for 7.2:", "error: unknown type name 'foo'"}},
		}},
	}
	if !reflect.DeepEqual(got.Targets, want) {
		t.Errorf("targets:\n got %+v\nwant %+v", got.Targets, want)
	}
	if got.Source != ResultsSource || got.Accel != "tcg" || got.Schema != runresults.SchemaVersion {
		t.Errorf("source %q accel %q schema %d", got.Source, got.Accel, got.Schema)
	}
}

func TestRepoCommit(t *testing.T) {
	if got := repoCommit(context.Background(), t.TempDir()); got != "" {
		t.Errorf("repoCommit(not a repository) = %q, want \"\"", got)
	}
	got := qemuVersions(context.Background(), []string{"kmodtest-no-such-qemu"})
	if len(got) != 1 || !strings.Contains(got[0], "version unknown") {
		t.Errorf("qemuVersions(missing) = %q, want it to say the version is unknown", got)
	}
}
