package shard

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/kernels"
)

func units(costs map[string]float64, order ...string) []Unit {
	var us []Unit
	for _, k := range order {
		us = append(us, Unit{Kernel: k, Targets: []string{k}, Cost: costs[k]})
	}
	return us
}

func TestBalanceLongestFirst(t *testing.T) {
	costs := map[string]float64{"a": 7, "b": 5, "c": 4, "d": 4, "e": 3, "f": 3}
	us := units(costs, "a", "b", "c", "d", "e", "f")
	shards, err := Balance(us, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Longest first: a->1, b->2, c->2 (5<7), d->1 (9>11? no: 7<9), e->2, f->1.
	want := [][]string{{"a", "d", "f"}, {"b", "c", "e"}}
	for i, s := range shards {
		if got := s.Kernels(); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("shard %d: got %v, want %v", i+1, got, want[i])
		}
	}
	if shards[0].Cost != 14 || shards[1].Cost != 12 {
		t.Errorf("costs %v and %v, want 14 and 12", shards[0].Cost, shards[1].Cost)
	}
}

func TestBalanceIsDeterministic(t *testing.T) {
	// Equal costs: ties go by name, then by shard number, whatever the
	// input order.
	costs := map[string]float64{"x": 1, "y": 1, "z": 1, "w": 1}
	a, _ := Balance(units(costs, "w", "x", "y", "z"), 3)
	b, _ := Balance(units(costs, "z", "y", "x", "w"), 3)
	got := func(ss []Shard) (out []string) {
		for _, s := range ss {
			out = append(out, strings.Join(s.Kernels(), ","))
		}
		return out
	}
	if want := []string{"w,z", "x", "y"}; !reflect.DeepEqual(got(a), want) {
		t.Errorf("got %v, want %v", got(a), want)
	}
	if want := []string{"z,w", "x", "y"}; !reflect.DeepEqual(got(b), want) {
		t.Errorf("reversed input: got %v, want %v (the same shards, in input order)", got(b), want)
	}
}

func TestBalanceEveryUnitOnce(t *testing.T) {
	costs := map[string]float64{"a": 9, "b": 1, "c": 2, "d": 8, "e": 3}
	us := units(costs, "a", "b", "c", "d", "e")
	for n := 1; n <= len(us); n++ {
		shards, err := Balance(us, n)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, s := range shards {
			if len(s.Units) == 0 {
				t.Errorf("n=%d: shard %d is empty", n, s.Index)
			}
			for _, k := range s.Kernels() {
				seen[k]++
			}
		}
		for _, u := range us {
			if seen[u.Kernel] != 1 {
				t.Errorf("n=%d: %s in %d shards", n, u.Kernel, seen[u.Kernel])
			}
		}
	}
}

func TestBalanceBadN(t *testing.T) {
	us := units(map[string]float64{"a": 1, "b": 1}, "a", "b")
	for _, tt := range []struct {
		n    int
		want string
	}{
		{0, "want at least 1 shard"},
		{-2, "want at least 1 shard"},
		{3, "only 2 units of work (kernels, each with its profiles: a, b): use -shards 2 or fewer"},
	} {
		if _, err := Balance(us, tt.n); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("n=%d: got %v, want an error containing %q", tt.n, err, tt.want)
		}
	}
}

// testMatrix is a small matrix with a profile pair, an arm64 row and a
// kernel built from source.
func testMatrix() []kernels.Kernel {
	return []kernels.Kernel{
		{Name: "5.10", Profiles: []string{"default", "hardened"}},
		{Name: "6.1", Profiles: []string{"default"}},
		{Name: "6.1-arm64", Arch: arch.ARM64},
		{Name: "6.12-debug", Source: &kernels.SourceBuild{}},
	}
}

func TestUnitsEstimates(t *testing.T) {
	us, err := Units(testMatrix(), NewCosts(), "6.1")
	if err != nil {
		t.Fatal(err)
	}
	want := []Unit{
		{Kernel: "5.10", Targets: []string{"5.10", "5.10-hardened"}, Arch: "amd64", Cost: 2 * EstimateTarget},
		{Kernel: "6.1", Targets: []string{"6.1"}, Arch: "amd64", Fixtures: true, Cost: EstimateTarget + EstimateFixtures},
		{Kernel: "6.1-arm64", Targets: []string{"6.1-arm64"}, Arch: "arm64", Cost: EstimateArm64},
		{Kernel: "6.12-debug", Targets: []string{"6.12-debug"}, Arch: "amd64", Fixtures: true, Debug: true, Cost: EstimateDebug + EstimateDebugFixtures},
	}
	if !reflect.DeepEqual(us, want) {
		t.Errorf("got\n%+v\nwant\n%+v", us, want)
	}
}

func TestUnitsMeasured(t *testing.T) {
	// Two runs: 5.10's prep (fetch, root, module) counts once for both
	// profiles; a target measured twice costs the mean.
	run1 := harness.Timings{Targets: []harness.TargetTiming{
		{Target: "5.10", Kernel: "5.10", Fetch: 1, BuildRoot: 100, Module: 4, Boot: 5, Probe: 1, Built: true},
		{Target: "5.10-hardened", Kernel: "5.10", Fetch: 1, BuildRoot: 100, Module: 4, Boot: 6, Probe: 2, Built: true},
		{Target: "6.1", Kernel: "6.1", Boot: 3, Probe: 1, Built: true},
		{Target: "6.1", Kernel: "6.1", Fixture: "no-ack", Module: 3, Boot: 3, Probe: 2, Built: true},
		{Target: "6.1", Kernel: "6.1", Fixture: "leak", Module: 3, Boot: 3, Probe: 4, Built: true},
	}}
	run2 := harness.Timings{Targets: []harness.TargetTiming{
		{Target: "6.1", Kernel: "6.1", Boot: 5, Probe: 1, Built: true},
	}}
	us, err := Units(testMatrix()[:2], NewCosts(run1, run2), "6.1")
	if err != nil {
		t.Fatal(err)
	}
	if u := us[0]; u.Cost != 105+6+8 || !u.Measured {
		t.Errorf("5.10: cost %v measured %v, want 119 (prep 105 once, boots 6 and 8), measured", u.Cost, u.Measured)
	}
	if u := us[1]; u.Cost != 5+8+10 || !u.Measured {
		t.Errorf("6.1: cost %v measured %v, want 23 (mean boot 5, fixtures 8+10), measured", u.Cost, u.Measured)
	}
}

func TestEntryOf(t *testing.T) {
	debug := Unit{Kernel: "6.12-debug", Debug: true, Fixtures: true, Cost: 10.2}
	fix := Unit{Kernel: "6.1", Fixtures: true, Cost: 5}
	plain := Unit{Kernel: "7.2", Cost: 5}
	tests := []struct {
		units []Unit
		want  Entry
	}{
		{[]Unit{plain}, Entry{Shard: "1/2", ID: "1-of-2", Kernels: "7.2", Key: "7.2", Run: ".", Timeout: "35m", JobTimeout: 50, Cost: 5}},
		{[]Unit{fix, plain}, Entry{Shard: "1/2", ID: "1-of-2", Kernels: "6.1,7.2", Key: "6.1_7.2", Fixtures: "1", Run: ".", Timeout: "35m", JobTimeout: 50, Cost: 10}},
		{[]Unit{debug, plain}, Entry{Shard: "1/2", ID: "1-of-2", Kernels: "6.12-debug,7.2", Key: "6.12-debug_7.2", Fixtures: "1", DebugKernel: "1", Run: "TestModule|TestDebugFixtures", Timeout: "70m", JobTimeout: 85, Cost: 16}},
		{[]Unit{fix, debug}, Entry{Shard: "1/2", ID: "1-of-2", Kernels: "6.1,6.12-debug", Key: "6.1_6.12-debug", Fixtures: "1", DebugKernel: "1", Run: ".", Timeout: "70m", JobTimeout: 85, Cost: 16}},
	}
	for _, tt := range tests {
		s := Shard{Index: 1, Of: 2, Units: tt.units}
		for _, u := range tt.units {
			s.Cost += u.Cost
		}
		if got := EntryOf(s); got != tt.want {
			t.Errorf("%v:\ngot  %+v\nwant %+v", s.Kernels(), got, tt.want)
		}
	}
}

func TestMatrixJSON(t *testing.T) {
	shards, err := Balance([]Unit{{Kernel: "6.1", Cost: 1}, {Kernel: "7.2", Cost: 2}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Matrix(shards)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "\n") {
		t.Errorf("matrix spans lines; $GITHUB_OUTPUT wants one:\n%s", data)
	}
	var m struct {
		Include []map[string]any `json:"include"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Include) != 2 || m.Include[0]["shard"] != "1/2" || m.Include[0]["kernels"] != "7.2" || m.Include[1]["kernels"] != "6.1" {
		t.Errorf("unexpected matrix %s", data)
	}
}
