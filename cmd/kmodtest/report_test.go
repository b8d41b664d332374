package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kmodtest report renders the results.json that kmodtest merge wrote, in
// each format.
func TestReport(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	out := filepath.Join(t.TempDir(), "report")
	if code, _, stderr := kmodtest(t, "merge", "-o", out, "-shards", "4", shardsDir); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := kmodtest(t, "report", out)
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"| kernel | release | build | boot | insmod |", "| 6.1 | `6.1.0-", "**fail** [3]", "(kmodtest merge)", "never finished"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("markdown lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = kmodtest(t, "report", "-format", "ktap", filepath.Join(out, "results.json"))
	if code != 0 || !strings.HasPrefix(stdout, "KTAP version 1\n") || !strings.Contains(stdout, "not ok 5 ack") {
		t.Errorf("ktap: exit %d:\n%s", code, stdout)
	}
	code, stdout, _ = kmodtest(t, "report", "-format", "json", out)
	if code != 0 || !strings.Contains(stdout, `"schema": 1`) {
		t.Errorf("json: exit %d:\n%s", code, stdout)
	}
}

func TestReportUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "results.json")
	if err := os.WriteFile(bad, []byte(`{"schema": 9}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"report"}, "give one results.json, or the directory holding it"},
		{[]string{"report", t.TempDir()}, "no such file"},
		{[]string{"report", bad}, "schema version 9 is newer than this kmodtest reads (1): update kmodtest"},
		{[]string{"report", "-format", "html", dir}, `-format "html": want markdown, ktap or json`},
	}
	for _, tt := range tests {
		code, _, stderr := kmodtest(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("kmodtest %v: exit %d, want 2 and %q in:\n%s", tt.args, code, tt.want, stderr)
		}
	}
}
