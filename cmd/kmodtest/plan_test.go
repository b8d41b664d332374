package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/kernels"
)

// shardsDir holds real shard outputs and timings (see its README.md).
const shardsDir = "../../results/testdata/shards"

func TestPlanAndMergeUsageErrors(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	missing := filepath.Join(t.TempDir(), "timings.json")
	emptyDir := t.TempDir()
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"plan"}, "-shards 0: give the number of CI jobs to spread the matrix over, at least 1 (-shards 3)"},
		{[]string{"plan", "-shards", "-1"}, "-shards -1: give the number of CI jobs"},
		{[]string{"plan", "-shards", "x"}, `invalid value "x" for flag -shards`},
		{[]string{"plan", "-shards", "3", "-kernels", "6.1,7.2"}, "-shards 3: there are only 2 units of work (kernels, each with its profiles: 6.1, 7.2): use -shards 2 or fewer"},
		{[]string{"plan", "-shards", "2", "-costs", missing}, "no such file or directory: give a timings.json a run wrote (artifacts/latest/timings.json), or leave -costs out"},
		{[]string{"plan", "-shards", "2", "-costs", emptyDir}, "no timings.json in this directory or below it"},
		{[]string{"plan", "-shards", "2", "-kernels", "9.9"}, `-kernels: unknown kernel "9.9"`},
		{[]string{"plan", "3"}, `unexpected argument "3" (the number of jobs goes in -shards N)`},
		{[]string{"merge"}, "no input: give the go test -json files of the shards, or a directory holding them"},
		{[]string{"merge", missing}, "no such file or directory: give the go test -json files"},
		{[]string{"merge", emptyDir}, "no go test -json output (*.json) or results.json in this directory or below it"},
		{[]string{"merge", "-shards", "-1", shardsDir}, "-shards -1: give the number of shards the plan made"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := kmodtest(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 and stderr containing %q", code, stderr, tt.want)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	t.Setenv("KMODTEST_FIXTURE_KERNEL", "")
	code, stdout, stderr := kmodtest(t, "plan", "-shards", "3", "-costs", shardsDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var m struct {
		Include []map[string]any `json:"include"`
	}
	if err := json.Unmarshal([]byte(stdout), &m); err != nil || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("want one line of JSON, got %v:\n%s", err, stdout)
	}
	seen := map[string]int{}
	for _, e := range m.Include {
		for _, k := range strings.Split(e["kernels"].(string), ",") {
			seen[k]++
		}
	}
	matrix, err := kernels.LoadMatrix()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kernels.Names(matrix) {
		if seen[k] != 1 {
			t.Errorf("kernel %s is in %d shards, want 1:\n%s", k, seen[k], stdout)
		}
	}
	if strings.Contains(stderr, "fixtures:") {
		t.Errorf("the whole matrix holds the fixture kernel, yet:\n%s", stderr)
	}
	for _, want := range []string{"costs: " + shardsDir, "measured: 6.12, 7.3, 7.3-hardened", "shard 1/3: ", "(estimated)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestMerge(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	t.Setenv("KMODTEST_FIXTURE_KERNEL", "")
	out := filepath.Join(t.TempDir(), "report")
	code, stdout, stderr := kmodtest(t, "merge", "-o", out, "-shards", "4", shardsDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "merged 4 shard(s)") || !strings.Contains(stdout, "5 failure(s)") || !strings.Contains(stdout, "report: "+out) {
		t.Errorf("stdout:\n%s", stdout)
	}
	for _, name := range []string{"report.txt", "junit.xml", "report.html", "timings.json", "results.json", "results.ktap"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The merged timings plan the next run; a selection without the
	// fixture kernel says that no shard runs the fixtures.
	code, _, stderr = kmodtest(t, "plan", "-shards", "2", "-kernels", "6.12,7.3", "-costs", filepath.Join(out, "timings.json"))
	if code != 0 || !strings.Contains(stderr, "measured: 6.12, 7.3, 7.3-hardened") || !strings.Contains(stderr, "fixtures: the fixture kernel 6.1 is not selected") {
		t.Errorf("plan -costs on merge's timings.json: exit %d\n%s", code, stderr)
	}
}

func TestPlanAndMergeHelp(t *testing.T) {
	for _, c := range []string{"plan", "merge", "report"} {
		code, stdout, _ := kmodtest(t, c, "-h")
		if code != 0 || !strings.Contains(stdout, "usage: kmodtest "+c) || !strings.Contains(stdout, "Flags:") {
			t.Errorf("kmodtest %s -h: exit %d\n%s", c, code, stdout)
		}
	}
}
