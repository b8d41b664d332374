// Package compare holds two runs' results against each other (kmodtest
// compare): per target, the round-trip medians of the round-trip step
// and their change, flagged beyond noise, and every step whose status
// changed. A run is its results.json (package runresults), which every
// `go test ./vmtests` writes into its artifacts directory and `kmodtest
// merge` writes for a CI run: each target's steps and round trips.
package compare

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/runresults"
)

// NoisePercent is how far the module's round trip, relative to the
// kernel's, may move between two runs before it counts as a change. The
// ratio, not the module's median alone, is compared: the kernel's round
// trip is measured beside it, under the same load, and cancels the
// host's speed. Repeated runs of the real module moved the ratio by up
// to about 10 % (docs/performance.md).
const NoisePercent = 25

// Load reads a run's results.json: path is the file, or a directory
// holding it (a run's artifacts directory, artifacts/latest, or the
// directory kmodtest merge wrote).
func Load(path string) (*runresults.Run, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", path, err)
	}
	if info.IsDir() {
		file := filepath.Join(path, runresults.File)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read run %s: no %s in it: give a run's artifacts directory (artifacts/latest), the directory kmodtest merge wrote, or the file itself", path, runresults.File)
		}
		path = file
	}
	return runresults.Read(path)
}

// A Comparison is what changed from Old to New.
type Comparison struct {
	OldName, NewName string
	// RoundTrips has a line per target that has round trips in either run.
	RoundTrips []RoundTripChange
	// Steps lists every step whose status changed, by target.
	Steps []StepChange
	// OnlyOld and OnlyNew are the targets that only one run has.
	OnlyOld, OnlyNew []string
}

// A RoundTripChange is one target's round trips in both runs; either
// may be nil (the step did not run or did not finish).
type RoundTripChange struct {
	Target   string
	Old, New *contract.RoundTrips
}

// A StepChange is one step whose status differs between the runs ("" is
// a step the run did not have).
type StepChange struct {
	Target, Step string
	Old, New     string
}

// Compare compares two runs.
func Compare(oldName string, old *runresults.Run, newName string, new *runresults.Run) Comparison {
	c := Comparison{OldName: oldName, NewName: newName}
	olds, news := byTarget(old), byTarget(new)
	for _, name := range targets(olds, news) {
		o, inOld := olds[name]
		n, inNew := news[name]
		switch {
		case !inNew:
			c.OnlyOld = append(c.OnlyOld, name)
			continue
		case !inOld:
			c.OnlyNew = append(c.OnlyNew, name)
			continue
		}
		if o.RoundTrips != nil || n.RoundTrips != nil {
			c.RoundTrips = append(c.RoundTrips, RoundTripChange{Target: name, Old: o.RoundTrips, New: n.RoundTrips})
		}
		was, now := statuses(o), statuses(n)
		for _, st := range stepNames(o, n) {
			if was[st] != now[st] {
				c.Steps = append(c.Steps, StepChange{Target: name, Step: st, Old: was[st], New: now[st]})
			}
		}
	}
	return c
}

// byTarget keys a run's targets by name ("6.1", a fixture's "6.1
// slow-ack"). A target that two shards of a merge ran keeps the last.
func byTarget(r *runresults.Run) map[string]runresults.Target {
	m := map[string]runresults.Target{}
	for _, t := range r.Targets {
		m[t.Name] = t
	}
	return m
}

// statuses maps each step of t to its status.
func statuses(t runresults.Target) map[string]string {
	m := map[string]string{}
	for _, s := range t.Steps {
		m[s.Name] = s.Status
	}
	return m
}

// targets returns the names of both maps, sorted.
func targets(a, b map[string]runresults.Target) []string {
	var names []string
	for n := range a {
		names = append(names, n)
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// stepNames returns the steps of both targets, in the old one's order,
// then those only the new one has.
func stepNames(a, b runresults.Target) []string {
	var names []string
	for _, t := range []runresults.Target{a, b} {
		for _, s := range t.Steps {
			if !slices.Contains(names, s.Name) {
				names = append(names, s.Name)
			}
		}
	}
	return names
}

// Change is the change of the module's median, of the kernel's median
// and of their ratio, in percent of the old value; ok is false when
// either run lacks the round trips.
func (r RoundTripChange) Change() (module, kernel, ratio float64, ok bool) {
	if r.Old == nil || r.New == nil || r.Old.Module.MedianNS == 0 || r.Old.Kernel.MedianNS == 0 || r.Old.Ratio() == 0 {
		return 0, 0, 0, false
	}
	pct := func(o, n float64) float64 { return (n - o) / o * 100 }
	return pct(float64(r.Old.Module.MedianNS), float64(r.New.Module.MedianNS)),
		pct(float64(r.Old.Kernel.MedianNS), float64(r.New.Kernel.MedianNS)),
		pct(r.Old.Ratio(), r.New.Ratio()), true
}

// Verdict says "slower" or "faster" when the ratio moved by more than
// NoisePercent, "" within noise or when a run lacks the round trips.
func (r RoundTripChange) Verdict() string {
	_, _, ratio, ok := r.Change()
	switch {
	case !ok:
		return ""
	case ratio > NoisePercent:
		return "slower"
	case ratio < -NoisePercent:
		return "faster"
	}
	return ""
}

// Regressions lists what got worse: round trips slower beyond noise,
// and steps that passed in the old run and fail (or are missing) in the
// new one.
func (c Comparison) Regressions() []string {
	var out []string
	for _, r := range c.RoundTrips {
		if r.Verdict() == "slower" {
			_, _, ratio, _ := r.Change()
			out = append(out, fmt.Sprintf("%s: round trip %.0f%% slower relative to the kernel's (ratio %.2f -> %.2f)", r.Target, ratio, r.Old.Ratio(), r.New.Ratio()))
		}
	}
	for _, s := range c.Steps {
		if s.Old == runresults.StatusPass && s.New != runresults.StatusPass && s.New != runresults.StatusSkip {
			out = append(out, fmt.Sprintf("%s: step %s %s -> %s", s.Target, s.Step, status(s.Old), status(s.New)))
		}
	}
	return out
}

func status(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}

// Text is the comparison as kmodtest compare prints it.
func (c Comparison) Text() string {
	var w strings.Builder
	fmt.Fprintf(&w, "old: %s\nnew: %s\n", c.OldName, c.NewName)
	width := len("target")
	for _, r := range c.RoundTrips {
		width = max(width, len(r.Target))
	}
	fmt.Fprintf(&w, "\nround trip medians, old -> new (the ratio is the module's over the kernel's; beyond %d%% is flagged):\n", NoisePercent)
	if len(c.RoundTrips) == 0 {
		fmt.Fprintf(&w, "  none: no target of both runs ran the round-trip step (go test ./vmtests -steps full runs it)\n")
	}
	for _, r := range c.RoundTrips {
		fmt.Fprintf(&w, "  %-*s  module %s -> %s", width, r.Target, median(r.Old, true), median(r.New, true))
		if m, k, ratio, ok := r.Change(); ok {
			fmt.Fprintf(&w, " (%+.0f%%), kernel %s -> %s (%+.0f%%), ratio %.2f -> %.2f (%+.0f%%)",
				m, median(r.Old, false), median(r.New, false), k, r.Old.Ratio(), r.New.Ratio(), ratio)
			if v := r.Verdict(); v != "" {
				fmt.Fprintf(&w, "  %s", strings.ToUpper(v))
			}
		}
		fmt.Fprintln(&w)
	}
	fmt.Fprintf(&w, "\nsteps whose status changed:\n")
	if len(c.Steps) == 0 {
		fmt.Fprintf(&w, "  none\n")
	}
	for _, s := range c.Steps {
		fmt.Fprintf(&w, "  %s %s: %s -> %s\n", s.Target, s.Step, status(s.Old), status(s.New))
	}
	if len(c.OnlyOld) > 0 {
		fmt.Fprintf(&w, "\nonly in old: %s\n", strings.Join(c.OnlyOld, ", "))
	}
	if len(c.OnlyNew) > 0 {
		fmt.Fprintf(&w, "\nonly in new: %s\n", strings.Join(c.OnlyNew, ", "))
	}
	return w.String()
}

// median formats the module's (or the kernel's) median in µs, "-" when
// the run has none.
func median(r *contract.RoundTrips, module bool) string {
	if r == nil {
		return "-"
	}
	ns := r.Kernel.MedianNS
	if module {
		ns = r.Module.MedianNS
	}
	return fmt.Sprintf("%.0f µs", float64(ns)/1000)
}
