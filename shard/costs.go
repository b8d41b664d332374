package shard

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/kernels"
)

// Estimates, in seconds of work, for what no timings file measured:
// TCG figures of this project's build machine (2 cores, loaded) with the
// cache warm, as CI's restored caches are. Only their ratios matter for
// balancing.
const (
	// EstimateTarget is one amd64 target running every scenario: 7.3
	// and 7.3-hardened took 25 s each (boot 15-20 s, probe 5-10 s).
	EstimateTarget = 25.0
	// EstimateArm64 is one arm64 target: qemu-system-aarch64 always
	// emulates, KVM or not; the three arm64 rows took 114 s with every
	// scenario.
	EstimateArm64 = 40.0
	// EstimateDebug is the sanitizer kernel's target: KASAN and lockdep
	// make a full run's boot alone about 98 s.
	EstimateDebug = 180.0
	// EstimateFixtures is the fixture kernel's suites: 16 broken modules
	// booted with every scenario on its hardened profile, the
	// architecture fixture and the checks of the harness.
	EstimateFixtures = 450.0
	// EstimateDebugFixtures is the debug kernel's 9 broken modules, each
	// a boot of the debug kernel.
	EstimateDebugFixtures = 1100.0
)

// Costs are measured seconds of work per target, from timings files.
type Costs struct {
	// prep is a kernel's fetch, build root and module build, run once
	// for all its targets.
	prep map[string]float64
	// boot is a target's initramfs, boot and probe.
	boot map[string]float64
	// fixtures is the work of the fixture rows, by the kernel they ran on.
	fixtures map[string]float64
	// Files are the timings files read.
	Files []string
}

// LoadCosts reads the timings.json files at paths: each a file, or a
// directory searched for files named timings.json (the artifacts of a
// run, or the downloaded artifacts of CI's shards). A target measured
// more than once costs the mean of its measurements.
func LoadCosts(paths ...string) (Costs, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return Costs{}, fmt.Errorf("-costs: %w: give a %s a run wrote (artifacts/latest/%s), or leave -costs out to plan with the built-in estimates",
				err, harness.TimingsFile, harness.TimingsFile)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && d.Name() == harness.TimingsFile {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return Costs{}, fmt.Errorf("-costs: %w", err)
		}
		if len(found) == 0 {
			return Costs{}, fmt.Errorf("-costs %s: no %s in this directory or below it: give a run's artifacts directory, or leave -costs out to plan with the built-in estimates", p, harness.TimingsFile)
		}
		files = append(files, found...)
	}
	var all []harness.Timings
	for _, f := range files {
		t, err := harness.ReadTimings(f)
		if err != nil {
			return Costs{}, fmt.Errorf("-costs: %w", err)
		}
		all = append(all, t)
	}
	c := NewCosts(all...)
	c.Files = files
	return c, nil
}

// NewCosts turns timings into costs.
func NewCosts(ts ...harness.Timings) Costs {
	type sum struct {
		total float64
		n     int
	}
	prep, boot := map[string]*sum{}, map[string]*sum{}
	fixtures := map[string]float64{}
	add := func(m map[string]*sum, k string, v float64) {
		if m[k] == nil {
			m[k] = &sum{}
		}
		m[k].total += v
		m[k].n++
	}
	for _, t := range ts {
		for _, r := range t.Targets {
			work := r.Initramfs + r.Boot + r.Probe
			if r.Fixture != "" {
				fixtures[r.Kernel] += r.Module + work
				continue
			}
			add(prep, r.Kernel, r.Fetch+r.BuildRoot+r.Module)
			if r.Built {
				add(boot, r.Target, work)
			}
		}
	}
	c := Costs{prep: map[string]float64{}, boot: map[string]float64{}, fixtures: fixtures}
	for k, s := range prep {
		c.prep[k] = s.total / float64(s.n)
	}
	for k, s := range boot {
		c.boot[k] = s.total / float64(s.n)
	}
	return c
}

// Units returns the units of work of the matrix kernels ks, costed by c
// (estimates where c has no measurement). fixtureKernel is the kernel
// the fixture suites run on (vmtests' fixtureKernel, 6.1): its unit
// carries them, as the debug kernel's carries the debug fixtures.
func Units(ks []kernels.Kernel, c Costs, fixtureKernel string) ([]Unit, error) {
	var units []Unit
	for _, k := range ks {
		targets, err := harness.Targets([]kernels.Kernel{k})
		if err != nil {
			return nil, err
		}
		u := Unit{Kernel: k.Name, Arch: k.Arch.OrDefault(), Debug: k.Source != nil, Measured: true}
		u.Fixtures = u.Debug || k.Name == fixtureKernel
		u.Cost = c.prep[k.Name]
		for _, tg := range targets {
			u.Targets = append(u.Targets, tg.Name())
			cost, ok := c.boot[tg.Name()]
			if !ok {
				cost, u.Measured = estimate(u), false
			}
			u.Cost += cost
		}
		if u.Fixtures {
			cost, ok := c.fixtures[k.Name]
			if !ok {
				cost, u.Measured = EstimateFixtures, false
				if u.Debug {
					cost = EstimateDebugFixtures
				}
			}
			u.Cost += cost
		}
		units = append(units, u)
	}
	if len(units) == 0 {
		return nil, errors.New("the selection holds no kernel: nothing to plan")
	}
	return units, nil
}

// estimate is the cost of one of u's targets when none was measured.
func estimate(u Unit) float64 {
	switch {
	case u.Debug:
		return EstimateDebug
	case u.Arch != arch.AMD64:
		return EstimateArm64
	default:
		return EstimateTarget
	}
}

// Measured returns the names of the targets c has a measurement for.
func (c Costs) Measured() []string {
	var out []string
	for k := range c.boot {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
