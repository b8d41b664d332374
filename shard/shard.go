// Package shard splits the VM test matrix over CI machines: it plans
// which kernels each of N jobs runs, balanced by their measured cost, and
// prints the plan as a GitHub Actions matrix (kmodtest plan).
//
// # Units of work
//
// A Unit is what one shard runs as a whole: a kernel with all its boot
// profiles (5.10 and 5.10-hardened), plus the suites that ride on it
// (the fixtures on 6.1, the debug fixtures on 6.12-debug). A kernel's
// profiles stay together: they share the kernel's fetch, its build root
// and the module build (kmodtest's cache keys them by kernel, not
// profile), and -kernels selects a kernel with all its profiles, so a
// shard stays one plain `go test -kernels ...` command whose rerun lines
// work as they are. Splitting them would buy at most one boot of balance
// (the hardened profile adds a boot of a few seconds) and cost a second
// fetch and module build, and on a cold cache a second build root
// (100-150 s). Later dimensions (modules, CPU models) become fields of
// Unit.
//
// # Costs
//
// A unit's cost is in seconds of work: the kernel's fetch, build root and
// module build once (the largest any of its rows measured), plus each
// target's initramfs, boot and probe, plus its suites. Measured costs come
// from timings.json, the machine-readable timing table every run writes
// into its artifacts directory next to report.txt (see
// harness.TimingsFile), or from the merged timings.json that kmodtest
// merge writes for a CI run. Targets without a measurement get the
// estimates of [Estimate], and the unit says so (Measured false).
//
// # Balancing
//
// Balance assigns units longest first, each to the shard with the least
// work so far (longest-processing-time first: within 4/3 of the best
// split, and deterministic: ties go by name and by shard number).
package shard

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/kmodtest/kmodtest/internal/arch"
)

// A Unit is one piece of work that a single shard runs.
type Unit struct {
	// Kernel is the matrix kernel's name; Targets its targets
	// ("5.10", "5.10-hardened").
	Kernel  string
	Targets []string
	// Arch is the kernel's Debian architecture (amd64, arm64).
	Arch arch.Arch
	// Fixtures is set when the unit carries the fixture suites
	// (KMODTEST_FIXTURES=1): the broken modules on the fixture kernel,
	// or the debug fixtures on the debug kernel.
	Fixtures bool
	// Debug marks the sanitizer kernel, which is built rather than
	// fetched (KMODTEST_DEBUG_KERNEL=1) and needs the longer timeouts.
	Debug bool
	// Cost is the unit's work in seconds; Measured says whether every
	// part of it came from a timings file rather than an estimate.
	Cost     float64
	Measured bool
}

// A Shard is one CI job: the units it runs and their total cost.
type Shard struct {
	// Index counts from 1 to Of.
	Index, Of int
	Units     []Unit
	Cost      float64
}

// Kernels returns the kernels of the shard's units, in unit order.
func (s Shard) Kernels() []string {
	var out []string
	for _, u := range s.Units {
		out = append(out, u.Kernel)
	}
	return out
}

// Balance splits units into n shards by cost, longest first, each to
// the shard with the least cost so far. Within a shard the units keep
// their order in units (the matrix's). It fails when n is below 1 or
// above the number of units: a shard would run nothing.
func Balance(units []Unit, n int) ([]Shard, error) {
	if n < 1 {
		return nil, fmt.Errorf("-shards %d: want at least 1 shard", n)
	}
	if n > len(units) {
		return nil, fmt.Errorf("-shards %d: there are only %d units of work (kernels, each with its profiles: %s): use -shards %d or fewer, or a shard would run nothing",
			n, len(units), strings.Join(unitNames(units), ", "), len(units))
	}
	order := make([]int, len(units))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmp.Compare(units[b].Cost, units[a].Cost); c != 0 {
			return c
		}
		return cmp.Compare(units[a].Kernel, units[b].Kernel)
	})
	shards := make([]Shard, n)
	members := make([][]int, n)
	for i := range shards {
		shards[i] = Shard{Index: i + 1, Of: n}
	}
	for _, u := range order {
		least := 0
		for i := range shards {
			if shards[i].Cost < shards[least].Cost {
				least = i
			}
		}
		shards[least].Cost += units[u].Cost
		members[least] = append(members[least], u)
	}
	for i := range shards {
		slices.Sort(members[i])
		for _, u := range members[i] {
			shards[i].Units = append(shards[i].Units, units[u])
		}
	}
	return shards, nil
}

func unitNames(units []Unit) []string {
	var out []string
	for _, u := range units {
		out = append(out, u.Kernel)
	}
	return out
}
