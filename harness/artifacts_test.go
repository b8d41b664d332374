package harness

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNewRunDir(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 11, 27, 14, 0, 0, 0, time.UTC)
	first, err := NewRunDir(root, t0, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	second, err := NewRunDir(root, t0, t.Logf) // same second, same process
	if err != nil {
		t.Fatal(err)
	}
	if first == second {
		t.Fatalf("two runs share %s", first)
	}
	pid := strconv.Itoa(os.Getpid())
	if want := filepath.Join(root, "runs", "20261127T140000Z-"+pid); first != want {
		t.Errorf("run dir %s, want %s", first, want)
	}
	link, err := os.Readlink(filepath.Join(root, "latest"))
	if err != nil || filepath.Join(root, link) != second {
		t.Errorf("latest -> %q (%v), want the newest run %s", link, err, second)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(root, ".latest-*")); len(leftovers) > 0 {
		t.Errorf("temporary links left: %v", leftovers)
	}
}

func TestNewRunDirPrunesOnlyOldRuns(t *testing.T) {
	root := t.TempDir()
	runs := filepath.Join(root, "runs")
	// Old runs of processes that ended (pid 1 is init: always alive, so
	// a dead pid is needed; a huge one does not exist).
	for i := range 15 {
		name := time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC).Format("20060102T150405Z") + "-999999999"
		if err := os.MkdirAll(filepath.Join(runs, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A run still going (this process), the oldest of all, and things
	// that are not run directories.
	live := "20250101T000000Z-" + strconv.Itoa(os.Getppid())
	for _, d := range []string{live, "keep-me", "20250101T000000Z"} {
		if err := os.MkdirAll(filepath.Join(runs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	current, err := NewRunDir(root, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(runs)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	var oldRuns int
	for _, n := range left {
		if strings.HasSuffix(n, "-999999999") {
			oldRuns++
		}
	}
	if oldRuns != KeepRuns-1 {
		t.Errorf("%d old runs left, want %d (with the new one, %d): %v", oldRuns, KeepRuns-1, KeepRuns, left)
	}
	for _, want := range []string{filepath.Base(current), live, "keep-me", "20250101T000000Z", "20260101T001400Z-999999999"} {
		if !slices.Contains(left, want) {
			t.Errorf("%s was removed: %v", want, left)
		}
	}
	if slices.Contains(left, "20260101T000000Z-999999999") {
		t.Errorf("the oldest finished run was kept")
	}
	if _, err := os.Stat(filepath.Join(root, "notes.txt")); err != nil {
		t.Errorf("a file outside runs/ was touched: %v", err)
	}
}

func TestLatestMustBeALink(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "latest"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRunDir(root, time.Now(), t.Logf); err == nil || !strings.Contains(err.Error(), "not a symbolic link") {
		t.Errorf("a directory named latest was replaced: %v", err)
	}
}

// TestSameKernelTwice: -kernels 6.1,6.1 selects one target, so that no two
// targets share an artifacts directory.
func TestSameKernelTwice(t *testing.T) {
	t.Setenv("KMODTEST_MATRIX", "")
	names, err := Options{Kernels: "6.1,6.1"}.Check()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"6.1"}) {
		t.Errorf("-kernels 6.1,6.1 selects %v, want 6.1 once", names)
	}
}
