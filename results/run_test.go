package results

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/runresults"
)

func TestRunFromGoTestOutput(t *testing.T) {
	r := loadShards(t)
	r.Expected = 5
	run := r.Run()
	if run.Source != "kmodtest merge" || run.Accel != "" || len(run.Shards) != 4 {
		t.Errorf("source %q accel %q shards %q", run.Source, run.Accel, run.Shards)
	}
	byName := map[string]runresults.Target{}
	for _, tg := range run.Targets {
		byName[tg.Name] = tg
	}
	t61 := byName["6.1"]
	if t61.Release == "" || !strings.HasPrefix(t61.Release, "6.1.0-") || t61.Shard != "shard-3-of-4" || t61.Status != runresults.StatusFail {
		t.Errorf("6.1: release %q shard %q status %q", t61.Release, t61.Shard, t61.Status)
	}
	ack, ok := t61.Step("ack")
	want := []string{"ack: want NLMSG_ERROR error 0 seq 1525454862 after the reply, got [reply seq 1525454862] within 2s (no ack)"}
	if !ok || ack.Status != runresults.StatusFail || !reflect.DeepEqual(ack.Failure, want) {
		t.Errorf("6.1 ack: %+v, want its reason alone (no header, artifacts or rerun lines)", ack)
	}
	if boot, ok := t61.Step("boot"); !ok || boot.Status != runresults.StatusPass {
		t.Errorf("6.1 boot: %+v, want pass (its steps ran)", boot)
	}
	t510 := byName["5.10"]
	if t510.Status != runresults.StatusFail || len(t510.Failure) == 0 || !strings.Contains(t510.Failure[0], "never finished") {
		t.Errorf("5.10: status %q failure %q, want a failure saying its test never finished", t510.Status, t510.Failure)
	}
	t73 := byName["7.3-hardened"]
	if t73.Profile != "hardened" || t73.CPU != "qemu64" || t73.Kernel != "7.3" {
		t.Errorf("7.3-hardened: %+v, want kernel, profile and cpu from timings.json", t73)
	}
	if boot, _ := t73.Step("boot"); boot.Seconds <= 0 {
		t.Errorf("7.3-hardened boot: %+v, want its seconds from timings.json", boot)
	}
	if st, _ := t73.Step("alloc-failures"); st.Status != runresults.StatusSkip || !strings.Contains(st.SkipReason, "fail-nth") {
		t.Errorf("7.3-hardened alloc-failures: %+v, want a skip with its reason", st)
	}
	if run.Steps[0] != "build" || run.Steps[1] != "boot" || run.Steps[len(run.Steps)-1] != "kernel-log" {
		t.Errorf("steps %q: want build, boot first and kernel-log last", run.Steps)
	}
	var tests []string
	for _, tt := range run.Tests {
		tests = append(tests, tt.Name+" "+tt.Status)
	}
	if !strings.Contains(strings.Join(tests, ","), "TestFixtures skip") || !strings.Contains(strings.Join(tests, ","), "shard-5-of-5 fail") {
		t.Errorf("tests %q: want TestFixtures (skipped) and the missing shard", tests)
	}
}

// A shard whose directory holds the results.json its run wrote gives its
// targets from there: durations and releases a go test output lacks.
func TestRunPrefersTheShardsResultsFile(t *testing.T) {
	dir := t.TempDir()
	shard := filepath.Join(dir, "shard-1-of-4")
	if err := os.MkdirAll(shard, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/shards/shard-1-of-4/go-test.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shard, "go-test.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	own := &runresults.Run{Schema: 1, Source: "go test ./vmtests", Accel: "tcg", Commit: "abc", Steps: []string{"build", "boot", "insmod"},
		Targets: []runresults.Target{{Name: "6.12", Release: "6.12.117+deb13-amd64", Status: "pass", Steps: []runresults.Step{{Name: "insmod", Status: "pass", Seconds: 0.25}}}}}
	if err := own.WriteDir(shard); err != nil {
		t.Fatal(err)
	}
	// An artifacts directory given on its own is a shard too.
	alone := filepath.Join(dir, "art-2")
	if err := os.MkdirAll(alone, 0o755); err != nil {
		t.Fatal(err)
	}
	other := &runresults.Run{Schema: 1, Source: "go test ./vmtests", Accel: "tcg", Commit: "abc", Steps: []string{"build"},
		Targets: []runresults.Target{{Name: "7.2", Status: "fail", Steps: []runresults.Step{{Name: "build", Status: "fail"}}}}}
	if err := other.WriteDir(alone); err != nil {
		t.Fatal(err)
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	run := r.Run()
	if len(run.Targets) != 2 {
		t.Fatalf("targets %+v, want 6.12 and 7.2", run.Targets)
	}
	got := run.Targets[0]
	if got.Name != "6.12" || got.Shard != "shard-1-of-4" || got.Steps[0].Seconds != 0.25 {
		t.Errorf("6.12: %+v, want the shard's own results.json", got)
	}
	if got := run.Targets[1]; got.Name != "7.2" || got.Shard != "art-2" {
		t.Errorf("7.2: %+v, want it from art-2/results.json", got)
	}
	if run.Commit != "abc" || run.Accel != "tcg" {
		t.Errorf("commit %q accel %q, want the shards' own", run.Commit, run.Accel)
	}
}
