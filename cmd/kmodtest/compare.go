package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/kmodtest/kmodtest/compare"
)

var compareCommand = &command{
	Name:  "compare",
	Args:  "OLD NEW",
	Short: "compare two runs: round-trip medians per kernel and steps whose status changed",
	Long: `compare reads two runs' results.json: OLD and NEW are each the file, or a
directory holding it (a run's artifacts directory such as
artifacts/runs/<time>-<pid> or artifacts/latest, or the directory
kmodtest merge wrote for a CI run). It prints, per target, the medians
of the round-trip step (the module's and the kernel's own round trip)
and their change in percent, flags a change of the module's ratio to
the kernel's beyond the noise, and lists every step whose status
changed.

compare exits 1 when NEW is worse: a round trip slower beyond the noise,
or a step that passed in OLD and fails in NEW.`,
	Run: runCompare,
}

func runCompare(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("compare")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usagef("want two runs, OLD and NEW (each a results.json or a directory holding one, such as artifacts/latest), got %d argument(s)", fs.NArg())
	}
	oldPath, newPath := fs.Arg(0), fs.Arg(1)
	old, err := compare.Load(oldPath)
	if err != nil {
		return usagef("%v", err)
	}
	new, err := compare.Load(newPath)
	if err != nil {
		return usagef("%v", err)
	}
	c := compare.Compare(oldPath, old, newPath, new)
	fmt.Fprint(env.stdout, c.Text())
	if r := c.Regressions(); len(r) > 0 {
		return fmt.Errorf("new is worse than old:\n  %s", strings.Join(r, "\n  "))
	}
	return nil
}
