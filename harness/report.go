package harness

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/verdict"
	"github.com/kmodtest/kmodtest/vm"
)

// StepBuild is the report's name for fetching the kernel and building
// the module, the step before any boot.
const StepBuild = "build"

// A Row is one booted target's line in the report.
type Row struct {
	Name string
	// Timings are fetch, build root, module, initramfs, boot and probe;
	// a target that did not build has the first three or none.
	Timings []time.Duration
	// Cached says what came from the cache.
	Cached string
	// Steps maps a step's name to its contract.Status*.
	Steps map[string]string
	// First is the first failing step, if any.
	First string
	// Fixture names the broken module this row ran, if any: such rows
	// are expected to fail and are summarised apart.
	Fixture string
	// Coverage is the module's line coverage summary, for targets that
	// build it with gcov profiling.
	Coverage string
	// CPU is the guest's CPU model.
	CPU string
	// Target is the target booted, for timings.json.
	Target Target
	// KernelCached and ModuleCached say what came from the cache.
	KernelCached, ModuleCached bool
	// Guest says how the guest started: GuestBooted, GuestRestored, or
	// GuestSaved (booted once and saved, then restored).
	Guest string
	// Release is the kernel's uname -r, BuildError why the kernel or
	// module did not build, and Verdict the judged steps of the boot:
	// results.json's details (see results.go).
	Release    string
	BuildError string
	Verdict    *verdict.Report
	// RoundTrips is what the round-trip step measured, if it ran.
	RoundTrips *contract.RoundTrips
}

// A Report collects rows from concurrent boots and prints the timing
// table and the kernels x steps summary.
type Report struct {
	Accel vm.Accel
	// Steps are the probe steps of the run, in order.
	Steps []string
	// Started is when the session started: the report gives the whole
	// run's time from it (zero: not given).
	Started time.Time

	mu   sync.Mutex
	rows []Row
}

// Add records one row.
func (r *Report) Add(row Row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row)
}

// String returns the report, or "" when no row was added.
func (r *Report) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rows) == 0 {
		return ""
	}
	rows, width := r.sorted()
	var w strings.Builder
	fmt.Fprintf(&w, "\ntimings (seconds; accelerator %s):\n", r.Accel)
	fmt.Fprintf(&w, "%-*s %-14s %7s %7s %7s %7s %7s %7s  %s\n", width, "target", "cpu", "fetch", "broot", "module", "initrd", "boot", "probe", "cached")
	for _, row := range rows {
		fmt.Fprintf(&w, "%-*s %-14s", width, row.Name, row.CPU)
		for _, d := range row.Timings {
			fmt.Fprintf(&w, " %7.2f", d.Seconds())
		}
		fmt.Fprintf(&w, "  %s\n", row.Cached)
	}
	if !r.Started.IsZero() {
		fmt.Fprintf(&w, "whole run: %.1fs from the session's start to this report (%s)\n", time.Since(r.Started).Seconds(), guestCounts(rows))
	}
	r.summary(&w, rows, width)
	return w.String()
}

// guestCounts says how many guests were booted, restored and saved.
func guestCounts(rows []Row) string {
	n := map[string]int{}
	for _, row := range rows {
		if row.Guest != "" {
			n[row.Guest]++
		}
	}
	return fmt.Sprintf("guests: %d booted, %d restored, %d saved", n[GuestBooted], n[GuestRestored], n[GuestSaved])
}

// Summary returns the kernels x steps summary alone (what String prints
// after the timing table), or "" when no row was added: kmodtest merge
// prints it for rows read from go test's output.
func (r *Report) Summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rows) == 0 {
		return ""
	}
	rows, width := r.sorted()
	var w strings.Builder
	r.summary(&w, rows, width)
	return w.String()
}

// sorted returns the rows by name and the width of the target column,
// which fits the longest name ("6.1-arm64 char-signedness"). The caller
// holds r.mu.
func (r *Report) sorted() ([]Row, int) {
	rows := append([]Row(nil), r.rows...)
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	width := 22
	for _, row := range rows {
		width = max(width, len(row.Name))
	}
	return rows, width
}

// summary writes the kernels x steps table of rows, the first failure,
// coverage and the fixtures to w.
func (r *Report) summary(w *strings.Builder, rows []Row, width int) {
	steps := append([]string{StepBuild, verdict.BootStep}, r.Steps...)
	steps = append(steps, verdict.LogStep)
	fmt.Fprintf(w, "\nsummary (. pass, F fail, s skip, - not run):\n")
	for i, st := range steps {
		fmt.Fprintf(w, "  %2d %s\n", i+1, st)
	}
	fmt.Fprintf(w, "%-*s ", width, "target")
	for i := range steps {
		fmt.Fprintf(w, "%3d", i+1)
	}
	fmt.Fprintln(w)
	marks := map[string]string{contract.StatusPass: ".", contract.StatusFail: "F", contract.StatusSkip: "s"}
	first := ""
	var fixtures []Row
	for _, row := range rows {
		if row.Fixture != "" {
			fixtures = append(fixtures, row)
			continue
		}
		fmt.Fprintf(w, "%-*s ", width, row.Name)
		for _, st := range steps {
			mark := marks[row.Steps[st]]
			if mark == "" {
				mark = "-"
			}
			fmt.Fprintf(w, "%3s", mark)
		}
		fmt.Fprintln(w)
		if row.First != "" && first == "" {
			first = row.Name + ": " + row.First
		}
	}
	if first != "" {
		fmt.Fprintf(w, "first failure: %s\n", first)
	}
	for _, row := range rows {
		if row.Coverage != "" && row.Fixture == "" {
			fmt.Fprintf(w, "coverage of the module on %s: %s\n", row.Name, row.Coverage)
		}
	}
	for _, row := range rows {
		if rt := row.RoundTrips; rt != nil && row.Fixture == "" {
			fmt.Fprintf(w, "round trip on %s: module median %.0f µs, kernel %.0f µs (%.2fx)\n",
				row.Name, float64(rt.Module.MedianNS)/1000, float64(rt.Kernel.MedianNS)/1000, rt.Ratio())
		}
	}
	if len(fixtures) > 0 {
		fmt.Fprintf(w, "\nbroken fixtures (each must fail, an architecture's only on that one; TestFixtures and TestArchFixtures check the step and reason):\n")
		for _, row := range fixtures {
			caught := "NOT CAUGHT: every step passed"
			if row.First != "" {
				caught = "first failing step: " + row.First
			}
			fmt.Fprintf(w, "  %-*s %s\n", width, row.Name, caught)
		}
	}
}
