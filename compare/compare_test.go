package compare

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/runresults"
)

// The testdata are results.json files of real runs on the build machine
// (2026-12-07, TCG):
//
//	6.1.json           go test ./vmtests -count=1 -kernels 6.1 -steps full -run TestModule
//	6.1-slow-ack.json  the same with kmod/ patched with fixtures/slow-ack.patch
//	matrix-core.json   go test ./vmtests (every kernel, core steps), on main
//	                   before the round-trip step existed

func load(t *testing.T, name string) *runresults.Run {
	t.Helper()
	r, err := Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCompareSlowerModule(t *testing.T) {
	c := Compare("old", load(t, "6.1.json"), "new", load(t, "6.1-slow-ack.json"))
	if len(c.RoundTrips) != 1 || c.RoundTrips[0].Verdict() != "slower" {
		t.Fatalf("round trips %+v, want 6.1 slower", c.RoundTrips)
	}
	want := []StepChange{{Target: "6.1", Step: contract.StepRoundTrip, Old: runresults.StatusPass, New: runresults.StatusFail}}
	if diff := cmp.Diff(want, c.Steps); diff != "" {
		t.Errorf("unexpected step changes (-want +got):\n%s", diff)
	}
	wantRegressions := []string{
		"6.1: round trip 5004% slower relative to the kernel's (ratio 1.05 -> 53.75)",
		"6.1: step round-trip pass -> fail",
	}
	if diff := cmp.Diff(wantRegressions, c.Regressions()); diff != "" {
		t.Errorf("unexpected regressions (-want +got):\n%s", diff)
	}
	text := c.Text()
	for _, line := range []string{
		"  6.1     module 28 µs -> 2831 µs (+10161%), kernel 26 µs -> 53 µs (+101%), ratio 1.05 -> 53.75 (+5004%)  SLOWER\n",
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
	run := load(t, "6.1.json")
	c := Compare("a", run, "b", run)
	if len(c.RoundTrips) != 1 || c.RoundTrips[0].Verdict() != "" || len(c.Steps) != 0 || len(c.Regressions()) != 0 {
		t.Errorf("a run against itself: round trips %+v, steps %+v, regressions %q", c.RoundTrips, c.Steps, c.Regressions())
	}
	if !strings.Contains(c.Text(), "steps whose status changed:\n  none\n") {
		t.Errorf("text:\n%s", c.Text())
	}
}

func TestCompareRunWithoutRoundTrips(t *testing.T) {
	c := Compare("old", load(t, "matrix-core.json"), "new", load(t, "6.1.json"))
	if len(c.OnlyOld) != 10 || len(c.OnlyNew) != 0 {
		t.Errorf("only in old %q (want the 10 other targets), only in new %q (want none)", c.OnlyOld, c.OnlyNew)
	}
	if len(c.RoundTrips) != 1 {
		t.Fatalf("round trips %+v, want 6.1's", c.RoundTrips)
	}
	if r := c.RoundTrips[0]; r.Old != nil || r.New == nil || r.Verdict() != "" {
		t.Errorf("round trips %+v, want only new ones and no verdict", r)
	}
	// The scenario steps are new: absent -> pass, no regression. Counted
	// in the recorded run, which has the step table of its day.
	want := 0
	for _, st := range byTarget(load(t, "6.1.json"))["6.1"].Steps {
		if slices.Contains(contract.FullSteps, st.Name) && !slices.Contains(contract.CoreSteps, st.Name) {
			want++
		}
	}
	if len(c.Steps) != want || len(c.Regressions()) != 0 {
		t.Errorf("%d step changes (want %d), regressions %q (want none)", len(c.Steps), want, c.Regressions())
	}
	if !strings.Contains(c.Text(), "  6.1     module - -> ") || !strings.Contains(c.Text(), "  6.1 round-trip: absent -> pass\n") {
		t.Errorf("text:\n%s", c.Text())
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
	if err := os.WriteFile(filepath.Join(dir, runresults.File), data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(dir)
	if err != nil || len(r.Targets) != 1 {
		t.Fatalf("Load(%s) = %v; want the one target of its results.json", dir, err)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no results.json in it") {
		t.Errorf("Load(empty dir) = %v, want an error saying what to give", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("Load(missing) succeeded")
	}
}
