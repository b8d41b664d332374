// Package runresults is results.json: what one run of the VM tests
// found, in a documented and versioned schema that tools other than go
// test can read, and its two renderings, a KTAP file (package ktap) and
// a kernels x steps Markdown table a project can paste into its README.
//
// `go test ./vmtests` writes results.json and results.ktap into its
// artifacts directory beside report.txt and timings.json; `kmodtest
// merge` writes them for the shards of a CI run, merged; `kmodtest
// report` renders any results.json again. One Run type serves all
// three, so a single run and a merged one read the same. The fields are
// described in docs/results.md.
package runresults

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
)

// SchemaVersion is the version of results.json this package writes and
// reads. A change that removes or redefines a field increments it;
// adding a field does not.
const SchemaVersion = 1

// Files a run writes into its artifacts directory.
const (
	File     = "results.json"
	KTAPFile = "results.ktap"
)

// Statuses of a step and a target: pass, fail and skip are the harness's
// own (contract.Status*); unfinished is a step whose test started and
// never ended (a timeout, a crash), found only by a merge.
const (
	StatusPass       = "pass"
	StatusFail       = "fail"
	StatusSkip       = "skip"
	StatusUnfinished = "unfinished"
)

// MaxFailureLines bounds Step.Failure: the reasons and the first kernel
// lines behind them; the full text stays in the run's artifacts and in
// go test's output.
const MaxFailureLines = 12

// A Run is the content of results.json.
type Run struct {
	// Schema is SchemaVersion.
	Schema int `json:"schema"`
	// Date is when the run ended (a merge: the newest of its shards, or
	// when it merged them when no shard says), in UTC.
	Date time.Time `json:"date"`
	// Source is what wrote the file: "go test ./vmtests", "kmodtest
	// merge" or "kmodtest check".
	Source string `json:"source"`
	// Project is the module project a kmodtest check checked (its name
	// and version); absent for NetlinkGreetings' runs.
	Project string `json:"project,omitempty"`
	// Commit is the kmodtest repository's commit (git describe --always
	// --dirty), when it is a git work tree.
	Commit string `json:"kmodtest_commit,omitempty"`
	// QEMU is the first line of `qemu-system-<arch> --version` of each
	// QEMU the run used.
	QEMU []string `json:"qemu,omitempty"`
	// Accel is the accelerator, kvm or tcg, or "mixed" in a merge of
	// shards that ran under different ones.
	Accel string `json:"accel,omitempty"`
	// Shards names the merged shards, in a merge.
	Shards []string `json:"shards,omitempty"`
	// Steps are the steps' names in the run's order: the columns of the
	// table.
	Steps []string `json:"steps"`
	// Targets are the kernels x boot profiles the run booted, by name;
	// fixture rows (a broken module that must fail) have Fixture set.
	Targets []Target `json:"targets"`
	// Tests are the other top-level tests of a merge (the fixture
	// suites, the checks of the tools), with their status.
	Tests []Test `json:"tests,omitempty"`
}

// A Target is one kernel and boot profile of the run.
type Target struct {
	// Name is the target's name in test names and tables ("6.1",
	// "5.10-hardened", "6.1 smp=1", a fixture's "6.1 double-free").
	Name string `json:"name"`
	// Kernel is the matrix entry ("6.1"), Profile the boot profile
	// ("" for the default), Arch its architecture (amd64, arm64).
	Kernel  string `json:"kernel,omitempty"`
	Profile string `json:"profile,omitempty"`
	Arch    string `json:"arch,omitempty"`
	// Release is the kernel's uname -r.
	Release string `json:"release,omitempty"`
	// Module is, in a kmodtest check, what the row is for: one of the
	// project's modules ("(all)" or the list when the build failed or
	// the kernel was skipped), or one of its tests ("test/NAME",
	// "test/NAME/SUBTEST", "kunit/SUITE").
	Module string `json:"module,omitempty"`
	// CPU is the guest's CPU model (-cpu).
	CPU string `json:"cpu,omitempty"`
	// Guest says how the guest started: booted, restored (from a saved
	// guest) or saved (booted once, saved, then restored).
	Guest string `json:"guest,omitempty"`
	// Fixture names the broken module this row ran: its failures are
	// expected, and the table and the KTAP file leave it out.
	Fixture string `json:"fixture,omitempty"`
	// Shard is the shard that ran it, in a merge.
	Shard string `json:"shard,omitempty"`
	// Status is fail when a step failed or never finished, else pass
	// (skip when every step skipped).
	Status string `json:"status"`
	// Steps are the steps that ran, in the run's order: build, boot,
	// the probe's steps, kernel-log.
	Steps []Step `json:"steps"`
	// Failure says why the target failed when no step says it: its test
	// never finished (a -timeout, a crash), found by a merge.
	Failure []string `json:"failure,omitempty"`
	// RoundTrips is what the round-trip step measured: the medians and
	// 99th percentiles of the module's and the kernel's round trips
	// (kmodtest compare holds two runs' against each other).
	RoundTrips *contract.RoundTrips `json:"round_trips,omitempty"`
}

// A Step is one step of one target.
type Step struct {
	Name string `json:"name"`
	// Status is pass, fail, skip or unfinished.
	Status string `json:"status"`
	// Seconds is how long the step took; absent when unknown (a merge
	// of go test output that came without the shard's results.json).
	Seconds float64 `json:"seconds,omitempty"`
	// Failure holds a failure's first lines: its reasons, then the
	// kernel's lines behind them, at most MaxFailureLines.
	Failure []string `json:"failure,omitempty"`
	// SkipReason says why a step skipped.
	SkipReason string `json:"skip_reason,omitempty"`
}

// A Test is a top-level test other than the module's steps.
type Test struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Reason is a skip's reason, or the first line of a failure.
	Reason string `json:"reason,omitempty"`
}

// Failed reports whether the step failed or never finished.
func (s Step) Failed() bool { return s.Status == StatusFail || s.Status == StatusUnfinished }

// Step returns the target's step of that name.
func (t *Target) Step(name string) (Step, bool) {
	for _, s := range t.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// Summarise sets the target's Status from its steps.
func (t *Target) Summarise() {
	t.Status = StatusSkip
	for _, s := range t.Steps {
		switch {
		case s.Failed():
			t.Status = StatusFail
			return
		case s.Status == StatusPass:
			t.Status = StatusPass
		}
	}
}

// FailureLines bounds lines to MaxFailureLines, trimmed, without empty
// lines, the last saying how many were left out.
func FailureLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) > MaxFailureLines {
		n := len(out) - (MaxFailureLines - 1)
		out = append(out[:MaxFailureLines-1], fmt.Sprintf("(%d more line(s): see the run's artifacts)", n))
	}
	return out
}

// Sort orders the targets by name, then shard.
func (r *Run) Sort() {
	slices.SortStableFunc(r.Targets, func(a, b Target) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Shard, b.Shard)
	})
}

// Failed reports whether a target that is no fixture, or another test,
// failed.
func (r *Run) Failed() bool {
	for _, t := range r.Targets {
		if t.Fixture == "" && t.Status == StatusFail {
			return true
		}
	}
	for _, t := range r.Tests {
		if t.Status == StatusFail || t.Status == StatusUnfinished {
			return true
		}
	}
	return false
}

// WriteDir writes results.json and results.ktap into dir.
func (r *Run) WriteDir(dir string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", File, err)
	}
	if err := os.WriteFile(filepath.Join(dir, File), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", File, err)
	}
	f, err := os.Create(filepath.Join(dir, KTAPFile))
	if err != nil {
		return fmt.Errorf("write %s: %w", KTAPFile, err)
	}
	if err := r.WriteKTAP(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", KTAPFile, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", KTAPFile, err)
	}
	return nil
}

// Read reads a results.json file and checks its schema version.
func Read(path string) (*Run, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	r, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Decode reads the content of a results.json file.
func Decode(data []byte) (*Run, error) {
	var r Run
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w (want the %s a run writes into its artifacts directory)", err, File)
	}
	switch {
	case r.Schema == 0:
		return nil, errors.New("no schema version: not a kmodtest " + File)
	case r.Schema > SchemaVersion:
		return nil, fmt.Errorf("schema version %d is newer than this kmodtest reads (%d): update kmodtest", r.Schema, SchemaVersion)
	}
	return &r, nil
}

// Merge joins the runs of several shards into one: their targets (each
// with its shard's name), their steps in the order of each run,
// their tests, and their metadata where they agree.
func Merge(runs map[string]*Run) *Run {
	m := &Run{Schema: SchemaVersion, Source: "kmodtest merge", Targets: []Target{}, Steps: []string{}}
	names := make([]string, 0, len(runs))
	for name := range runs {
		names = append(names, name)
	}
	slices.Sort(names)
	accels := map[string]bool{}
	commits := map[string]bool{}
	for _, name := range names {
		r := runs[name]
		m.Shards = append(m.Shards, name)
		if r.Date.After(m.Date) {
			m.Date = r.Date
		}
		if r.Accel != "" {
			accels[r.Accel] = true
		}
		if r.Commit != "" {
			commits[r.Commit] = true
		}
		for _, q := range r.QEMU {
			if !slices.Contains(m.QEMU, q) {
				m.QEMU = append(m.QEMU, q)
			}
		}
		m.Steps = mergeOrder(m.Steps, r.Steps)
		for _, t := range r.Targets {
			if t.Shard == "" {
				t.Shard = name
			}
			m.Targets = append(m.Targets, t)
		}
		m.Tests = append(m.Tests, r.Tests...)
	}
	m.Accel = agreed(accels)
	m.Commit = agreed(commits)
	m.Sort()
	return m
}

// mergeOrder adds the steps of b that a lacks, each after the step
// that precedes it in b (at the start when none does), so that a merge
// of a core run and a full one keeps kernel-log last.
func mergeOrder(a, b []string) []string {
	out := slices.Clone(a)
	for i, s := range b {
		if slices.Contains(out, s) {
			continue
		}
		at := 0
		if i > 0 {
			at = slices.Index(out, b[i-1]) + 1
		}
		out = slices.Insert(out, at, s)
	}
	return out
}

// agreed returns the one value of set, "" for none, "mixed" for more.
func agreed(set map[string]bool) string {
	if len(set) > 1 {
		return "mixed"
	}
	for v := range set {
		return v
	}
	return ""
}
