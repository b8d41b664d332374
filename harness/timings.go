package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/kmodtest/kmodtest/contract"
)

// TimingsFile is the name of the timing table's machine-readable twin in
// each run's artifacts directory, next to report.txt. `kmodtest plan
// -costs` reads it (or several merged) as the measured cost of each
// target.
const TimingsFile = "timings.json"

// Timings is the content of timings.json: where one run's time went, per
// row of the timing table.
type Timings struct {
	// Accel is the run's accelerator (kvm or tcg): costs measured under
	// one say little about the other.
	Accel string `json:"accel"`
	// Elapsed is the whole run, from the session's start to the report,
	// in seconds (0: not measured).
	Elapsed float64        `json:"elapsed,omitempty"`
	Targets []TargetTiming `json:"targets"`
}

// A TargetTiming is one row of the timing table, in seconds. Rows of one
// kernel share its fetch, build root and module build: each row repeats
// those (they were waited for once).
type TargetTiming struct {
	// Target is the target's name ("5.10-hardened"), Kernel and Profile
	// what it is made of.
	Target  string `json:"target"`
	Kernel  string `json:"kernel"`
	Profile string `json:"profile"`
	CPU     string `json:"cpu,omitempty"`
	// Fixture names the broken module the row ran, if any.
	Fixture string `json:"fixture,omitempty"`

	Fetch     float64 `json:"fetch"`
	BuildRoot float64 `json:"build_root"`
	Module    float64 `json:"module"`
	Initramfs float64 `json:"initramfs"`
	Boot      float64 `json:"boot"`
	Probe     float64 `json:"probe"`
	// KernelCached and ModuleCached say what came from the cache.
	KernelCached bool `json:"kernel_cached"`
	ModuleCached bool `json:"module_cached"`
	// Built is false when the kernel or module did not build: the row
	// has no boot.
	Built bool `json:"built"`
	// Guest says how the guest started: booted, restored or saved.
	Guest string `json:"guest,omitempty"`
	// RoundTrips is what the round-trip step measured, for the merged
	// report's summary (results.json has it too).
	RoundTrips *contract.RoundTrips `json:"round_trips,omitempty"`
}

// Timings returns the report's rows as timings.json holds them, sorted
// by name.
func (r *Report) Timings() Timings {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := Timings{Accel: string(r.Accel), Targets: []TargetTiming{}}
	if !r.Started.IsZero() {
		t.Elapsed = time.Since(r.Started).Seconds()
	}
	for _, row := range r.rows {
		tt := TargetTiming{
			Target:       row.Target.Name(),
			Kernel:       row.Target.Kernel.Name,
			Profile:      row.Target.Profile,
			CPU:          row.CPU,
			Fixture:      row.Fixture,
			KernelCached: row.KernelCached,
			ModuleCached: row.ModuleCached,
			Built:        row.Steps[StepBuild] == contract.StatusPass,
			Guest:        row.Guest,
			RoundTrips:   row.RoundTrips,
		}
		fields := []*float64{&tt.Fetch, &tt.BuildRoot, &tt.Module, &tt.Initramfs, &tt.Boot, &tt.Probe}
		for i, d := range row.Timings {
			if i < len(fields) {
				*fields[i] = float64(d.Milliseconds()) / 1000
			}
		}
		t.Targets = append(t.Targets, tt)
	}
	sort.Slice(t.Targets, func(i, j int) bool {
		a, b := t.Targets[i], t.Targets[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.Fixture < b.Fixture
	})
	return t
}

// writeTimings writes the report's timings to dir/timings.json.
func (r *Report) writeTimings(dir string) error {
	data, err := json.MarshalIndent(r.Timings(), "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", TimingsFile, err)
	}
	if err := os.WriteFile(filepath.Join(dir, TimingsFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", TimingsFile, err)
	}
	return nil
}

// ReadTimings reads a timings.json file.
func ReadTimings(path string) (Timings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Timings{}, fmt.Errorf("read timings: %w", err)
	}
	var t Timings
	if err := json.Unmarshal(data, &t); err != nil {
		return Timings{}, fmt.Errorf("read timings %s: %w (want the %s a run writes into its artifacts directory)", path, err, TimingsFile)
	}
	return t, nil
}
