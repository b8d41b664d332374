package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/results"
)

var mergeCommand = &command{
	Name:  "merge",
	Args:  "[-o DIR] [-shards N] FILE|DIR...",
	Short: "merge the shards' go test -json outputs into one report: table, JUnit, HTML, results.json and KTAP",
	Long: `merge reads the output of go test -json ./vmtests of each shard of a
run (files, or directories searched for *.json; timings.json and
results.json files among them are read as such) and writes into DIR:

  report.txt    the kernels x steps table of go test ./vmtests (with the
                timing table when the shards' timings.json files are
                among the inputs), the other tests, and each failure
                with its rerun line; also printed
  junit.xml     JUnit XML: a testsuite per shard, a testcase per test
  report.html   one page, nothing fetched from elsewhere: the table, the
                timings, and each failure with its reasons and rerun line
  timings.json  the shards' timings.json files as one, for kmodtest plan
                -costs (only when there were any)
  results.json  every target's steps in the versioned schema of
                docs/results.md (a shard's own results.json, found in
                the directory of its go test output, gives durations and
                releases); kmodtest report renders it again
  results.ktap  the same as KTAP version 1: a test per target, a subtest
                per step

A test that started and never ended (a -timeout, a crash, a cancelled
job) counts as failed. merge fails only when it cannot read its inputs
or write the report: the shards' jobs say whether the tests passed.

Flags:

  -o DIR      where the report goes (default kmodtest-report)
  -shards N   the number of shards the plan made: each of shard-1-of-N to
              shard-N-of-N (a file, or the directory of a file named
              go-test.json) that has no output counts as a failure`,
	Run: runMerge,
}

func runMerge(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet("merge")
	out := fs.String("o", "kmodtest-report", "")
	expected := fs.Int("shards", 0, "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("no input: give the go test -json files of the shards, or a directory holding them (kmodtest merge shards/)")
	}
	if *expected < 0 {
		return usagef("-shards %d: give the number of shards the plan made (kmodtest plan -shards), or leave it out", *expected)
	}
	r, err := results.Load(fs.Args()...)
	if err != nil {
		return usagef("%v", err)
	}
	r.Expected = *expected
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("report directory: %w", err)
	}
	text := r.Text()
	if err := os.WriteFile(filepath.Join(*out, "report.txt"), []byte(text), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := writeWith(filepath.Join(*out, "junit.xml"), r.JUnit); err != nil {
		return err
	}
	if err := writeWith(filepath.Join(*out, "report.html"), r.HTML); err != nil {
		return err
	}
	if len(r.Timings) > 0 {
		data, err := json.MarshalIndent(r.MergedTimings(), "", "  ")
		if err != nil {
			return fmt.Errorf("merge timings: %w", err)
		}
		if err := os.WriteFile(filepath.Join(*out, harness.TimingsFile), append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write timings: %w", err)
		}
	}
	if err := r.Run().WriteDir(*out); err != nil {
		return err
	}
	fmt.Fprint(env.stdout, text)
	fmt.Fprintf(env.stdout, "report: %s (report.txt, junit.xml, report.html, results.json, results.ktap)\n", *out)
	return nil
}

// writeWith creates path and writes it with write.
func writeWith(path string, write func(w io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
