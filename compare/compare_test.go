package compare

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/harness"
)

// The testdata are timings.json files of real runs on the build machine
// (2026-12-07, TCG, go test ./vmtests -count=1 -steps full -run TestModule):
//
//	6.1.json             -kernels 6.1, the real module
//	6.1-slow-ack.json    -kernels 6.1, kmod/ patched with fixtures/slow-ack.patch
//	6.1-before-steps.json -kernels 6.1, before timings.json held steps and round trips
//	5.10-6.12-7.3.json   -kernels 5.10,6.12,7.3, the real module

func load(t *testing.T, name string) harness.Timings {
	t.Helper()
	tm, err := Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestCompareSlowerModule(t *testing.T) {
	c := Compare("old", load(t, "6.1.json"), "new", load(t, "6.1-slow-ack.json"))
	if len(c.RoundTrips) != 1 || c.RoundTrips[0].Verdict() != "slower" {
		t.Fatalf("round trips %+v, want 6.1 slower", c.RoundTrips)
	}
	want := []StepChange{{Target: "6.1", Step: contract.StepRoundTrip, Old: contract.StatusPass, New: contract.StatusFail}}
	if diff := cmp.Diff(want, c.Steps); diff != "" {
		t.Errorf("unexpected step changes (-want +got):\n%s", diff)
	}
	wantRegressions := []string{
		"6.1: round trip 5847% slower relative to the kernel's (ratio 1.06 -> 62.79)",
		"6.1: step round-trip pass -> fail",
	}
	if diff := cmp.Diff(wantRegressions, c.Regressions()); diff != "" {
		t.Errorf("unexpected regressions (-want +got):\n%s", diff)
	}
	text := c.Text()
	for _, line := range []string{
		"  6.1     module 27 µs -> 2733 µs (+10002%), kernel 26 µs -> 44 µs (+70%), ratio 1.06 -> 62.79 (+5847%)  SLOWER\n",
		"  6.1 round-trip: pass -> fail\n",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("text lacks %q:\n%s", line, text)
		}
	}
}

func TestCompareFasterIsNoRegression(t *testing.T) {
	c := Compare("old", load(t, "6.1-slow-ack.json"), "new", load(t, "6.1.json"))
	if v := c.RoundTrips[0].Verdict(); v != "faster" {
		t.Errorf("verdict %q, want faster", v)
	}
	if r := c.Regressions(); len(r) != 0 {
		t.Errorf("regressions %q, want none", r)
	}
}

func TestCompareSameRun(t *testing.T) {
	run := load(t, "5.10-6.12-7.3.json")
	c := Compare("a", run, "b", run)
	if len(c.RoundTrips) != 5 || len(c.Steps) != 0 || len(c.Regressions()) != 0 {
		t.Errorf("a run against itself: %d round trips (want 5), steps %+v, regressions %q", len(c.RoundTrips), c.Steps, c.Regressions())
	}
	if !strings.Contains(c.Text(), "  5.10-hardened  module 89 µs -> 89 µs (+0%), kernel 87 µs -> 87 µs (+0%), ratio 1.03 -> 1.03 (+0%)\n") {
		t.Errorf("text:\n%s", c.Text())
	}
}

func TestCompareOldFormatAndOtherTargets(t *testing.T) {
	c := Compare("old", load(t, "6.1-before-steps.json"), "new", load(t, "6.1.json"))
	if diff := cmp.Diff([]string{"6.1"}, c.NoSteps); diff != "" {
		t.Errorf("targets without steps (-want +got):\n%s", diff)
	}
	if r := c.RoundTrips[0]; r.Old != nil || r.New == nil || r.Verdict() != "" {
		t.Errorf("round trips %+v, want only new ones and no verdict", r)
	}
	c = Compare("old", load(t, "6.1.json"), "new", load(t, "5.10-6.12-7.3.json"))
	if diff := cmp.Diff([]string{"6.1"}, c.OnlyOld); diff != "" {
		t.Errorf("only in old (-want +got):\n%s", diff)
	}
	if len(c.OnlyNew) != 5 || len(c.RoundTrips) != 0 {
		t.Errorf("only in new %q (want 5 targets), round trips %+v (want none)", c.OnlyNew, c.RoundTrips)
	}
}

func TestVerdictNoise(t *testing.T) {
	rt := func(module, kernel int64) *contract.RoundTrips {
		return &contract.RoundTrips{Module: contract.Latency{MedianNS: module}, Kernel: contract.Latency{MedianNS: kernel}}
	}
	tests := []struct {
		name     string
		old, new *contract.RoundTrips
		want     string
	}{
		{name: "host slower, module alike", old: rt(27000, 25000), new: rt(54000, 50000), want: ""},
		{name: "module 20% slower", old: rt(27000, 25000), new: rt(32400, 25000), want: ""},
		{name: "module 30% slower", old: rt(27000, 25000), new: rt(35100, 25000), want: "slower"},
		{name: "module 30% faster", old: rt(27000, 25000), new: rt(18900, 25000), want: "faster"},
		{name: "no old figures", old: nil, new: rt(27000, 25000), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (RoundTripChange{Target: "6.1", Old: tt.old, New: tt.new}).Verdict(); got != tt.want {
				t.Errorf("verdict %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", "6.1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, harness.TimingsFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	tm, err := Load(dir)
	if err != nil || len(tm.Targets) != 1 {
		t.Fatalf("Load(%s) = %d targets, %v; want the one of its timings.json", dir, len(tm.Targets), err)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no timings.json in it") {
		t.Errorf("Load(empty dir) = %v, want an error saying what to give", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("Load(missing) succeeded")
	}
}
