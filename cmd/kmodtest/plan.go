package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/shard"
)

// defaultFixtureKernel is the kernel vmtests runs the fixture suites on
// when KMODTEST_FIXTURE_KERNEL names none.
const defaultFixtureKernel = "6.1"

var planCommand = &command{
	Name:  "plan",
	Args:  "-shards N [-costs FILE|DIR] [-kernels 6.1,7.2]",
	Short: "split the VM matrix over N CI jobs, balanced by cost (a GitHub Actions matrix)",
	Long: `plan prints a GitHub Actions matrix, on one line of JSON, that spreads
the kernels of the matrix over N jobs with about the same work each:

  {"include":[{"shard":"1/3","id":"1-of-3","kernels":"6.1,7.2","key":"6.1_7.2","fixtures":"1",
    "debug_kernel":"","run":".","timeout":"35m","job_timeout":50,"cost":420}, ...]}

Each job runs go test ./vmtests -kernels <kernels> (id names the shard
where a slash may not go, key is the kernels for cache keys, which may
not hold commas), with KMODTEST_FIXTURES and
KMODTEST_DEBUG_KERNEL, -run and -timeout as given; cost is its planned
work in seconds. A summary of the shards goes to stderr.

A unit of work is a kernel with all its boot profiles (5.10 and
5.10-hardened share the fetch, the build root and the module build), plus
the suites it carries: the fixtures ride on the fixture kernel (6.1, or
$KMODTEST_FIXTURE_KERNEL), the debug fixtures on 6.12-debug. Units are
assigned longest first, each to the shard with the least work so far.

Costs are measured when -costs gives them: a timings.json, which every
run of go test ./vmtests writes into its artifacts directory
(artifacts/latest/timings.json), the merged one of kmodtest merge, or a
directory holding such files. A target without a measurement gets an
estimate (TCG, every scenario, warm cache): 25 s for an amd64 target,
40 s for an arm64 one, 180 s for the debug kernel, 450 s for the fixture
suites and 1100 s for the debug fixtures.

Flags:

  -shards N          the number of jobs: at least 1, at most the number of
                     kernels selected
  -costs FILE|DIR    timings.json files with measured costs (default: the
                     estimates alone)
  -kernels 6.1,7.2   kernels of the matrix to plan (default: all)`,
	Run: runPlan,
}

func runPlan(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("plan")
	n := fs.Int("shards", 0, "")
	costsPath := fs.String("costs", "", "")
	names := fs.String("kernels", "", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (the number of jobs goes in -shards N)", fs.Arg(0))
	}
	if *n < 1 {
		return usagef("-shards %d: give the number of CI jobs to spread the matrix over, at least 1 (-shards 3)", *n)
	}
	matrix, err := kernels.LoadMatrix()
	if err != nil {
		return err
	}
	var list []string
	if *names != "" {
		list = strings.Split(*names, ",")
	}
	selected, err := kernels.Select(matrix, list)
	if err != nil {
		return usagef("-kernels: %v", err)
	}
	costs := shard.NewCosts()
	if *costsPath != "" {
		if costs, err = shard.LoadCosts(*costsPath); err != nil {
			return usagef("%v", err)
		}
	}
	fixtureKernel := os.Getenv("KMODTEST_FIXTURE_KERNEL")
	if fixtureKernel == "" {
		fixtureKernel = defaultFixtureKernel
	}
	units, err := shard.Units(selected, costs, fixtureKernel)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(selected, func(k kernels.Kernel) bool { return k.Name == fixtureKernel }) {
		fmt.Fprintf(env.stderr, "fixtures: the fixture kernel %s is not selected: no shard runs the fixture suites (add it to -kernels)\n", fixtureKernel)
	}
	shards, err := shard.Balance(units, *n)
	if err != nil {
		return usagef("%v", err)
	}
	data, err := shard.Matrix(shards)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%s\n", data)
	printPlan(env, shards, costs)
	return nil
}

// printPlan tells a person, on stderr, what each shard runs and where
// its costs came from.
func printPlan(env *cliEnv, shards []shard.Shard, costs shard.Costs) {
	if len(costs.Files) > 0 {
		fmt.Fprintf(env.stderr, "costs: %s (measured: %s)\n", strings.Join(costs.Files, ", "), strings.Join(costs.Measured(), ", "))
	} else {
		fmt.Fprintf(env.stderr, "costs: estimates (give -costs with a run's %s to plan by measured costs)\n", harness.TimingsFile)
	}
	for _, s := range shards {
		var parts []string
		for _, u := range s.Units {
			p := fmt.Sprintf("%s %.0fs", u.Kernel, u.Cost)
			if !u.Measured {
				p += " (estimated)"
			}
			parts = append(parts, p)
		}
		fmt.Fprintf(env.stderr, "shard %d/%d: %.0fs: %s\n", s.Index, s.Of, s.Cost, strings.Join(parts, ", "))
	}
}
