package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kmodtest/kmodtest/runresults"
)

var reportCommand = &command{
	Name:  "report",
	Args:  "[-format markdown|ktap|json] FILE|DIR",
	Short: "render a run's results.json: the kernels x steps table for a README, KTAP or JSON",
	Long: `report reads the results.json that a run of go test ./vmtests writes
into its artifacts directory (artifacts/latest/), or that kmodtest merge
writes for the shards of a CI run, and prints it again. DIR stands for
DIR/results.json. The schema is in docs/results.md.

The fixture rows (broken modules that must fail) are left out of the
table and of KTAP. The exit status is 0 whenever the file could be read:
the results, not the report, say whether the run passed.

Flags:

  -format markdown   the kernels x steps table, one footnote per failure:
                     paste it into a README as "tested on" (the default)
  -format ktap       KTAP version 1: a test per target, a subtest per step
  -format json       the file itself, after checking its schema`,
	Run: runReport,
}

func runReport(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("report")
	format := fs.String("format", "markdown", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("give one results.json, or the directory holding it (kmodtest report artifacts/latest)")
	}
	switch *format {
	case "markdown", "ktap", "json":
	default:
		return usagef("-format %q: want markdown, ktap or json", *format)
	}
	path := fs.Arg(0)
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, runresults.File)
	}
	run, err := runresults.Read(path)
	if err != nil {
		return usagef("%v", err)
	}
	switch *format {
	case "markdown":
		fmt.Fprint(env.stdout, run.Markdown())
	case "ktap":
		return run.WriteKTAP(env.stdout)
	case "json":
		data, err := json.MarshalIndent(run, "", "  ")
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		fmt.Fprintf(env.stdout, "%s\n", data)
	}
	return nil
}
