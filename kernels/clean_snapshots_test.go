package kernels

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/internal/cachefs"
)

// TestCleanPlanSnapshotsAndDebugSymbols: cleaning some kernels takes
// their saved guests (any boot profile) and their -dbg vmlinux, and no
// other kernel's, although "6.1" is a prefix of "6.12".
func TestCleanPlanSnapshotsAndDebugSymbols(t *testing.T) {
	dir := t.TempDir()
	if err := cachefs.Claim(dir); err != nil {
		t.Fatal(err)
	}
	key := "0123456789abcdef"
	for e, owner := range map[string]string{"6.1-" + key: "6.1", "6.12-" + key: "6.12", "5.10-hardened-" + key: "5.10", "5.10-" + key: "5.10"} {
		d := filepath.Join(dir, "snapshots", e)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := cachefs.WriteJSON(filepath.Join(d, "manifest.json"), cachefs.FileManifest{Owner: owner, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for owner, rel := range map[string]string{"6.1": "6.1.0-56-amd64", "6.12": "6.12.117+deb13-amd64"} {
		d := filepath.Join(dir, "dbg", rel)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := cachefs.WriteJSON(filepath.Join(d, "manifest.json"), cachefs.FileManifest{Owner: owner, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	matrix := []Kernel{{Name: "5.10", Profiles: []string{"default", "hardened"}}, {Name: "6.1"}, {Name: "6.12"}}
	c := &Cache{Dir: dir}
	plan, err := c.CleanPlan(matrix, []Kernel{matrix[0], matrix[1]})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range plan {
		rel, _ := filepath.Rel(dir, r.Path)
		got = append(got, rel)
	}
	slices.Sort(got)
	want := []string{"dbg/6.1.0-56-amd64", "snapshots/5.10-" + key, "snapshots/5.10-hardened-" + key, "snapshots/6.1-" + key}
	if !slices.Equal(got, want) {
		t.Errorf("clean 5.10,6.1:\nwant %q\ngot  %q", want, got)
	}
}

// TestSnapshotEntry: a saved guest is a cache entry like any other: built
// once under its lock, its state, console and initramfs verified on use
// (a truncated console is rebuilt), the newest two of a target kept by
// pruning, and cleaned with its kernel.
func TestSnapshotEntry(t *testing.T) {
	dir := t.TempDir()
	if err := cachefs.Claim(dir); err != nil {
		t.Fatal(err)
	}
	c := &Cache{Dir: dir}
	builds := 0
	save := func(ctx context.Context, state string) error {
		builds++
		for name, data := range map[string]string{SnapshotState: "QEVM state", SnapshotConsole: "Run /init\n", SnapshotInitramfs: "070701"} {
			if err := os.WriteFile(filepath.Join(filepath.Dir(state), name), []byte(data), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	e := c.SnapshotEntry("6.1", "6.1-hardened", "0123456789abcdef", save)
	state, cached, err := e.Get(t.Context())
	if err != nil || cached || builds != 1 {
		t.Fatalf("first Get: %v, cached %v, %d builds", err, cached, builds)
	}
	if want := filepath.Join(dir, "snapshots", "6.1-hardened-0123456789abcdef", "state"); state != want {
		t.Errorf("state at %s, want %s", state, want)
	}
	if _, cached, err = e.Get(t.Context()); err != nil || !cached || builds != 1 {
		t.Fatalf("second Get: %v, cached %v, %d builds", err, cached, builds)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(state), SnapshotConsole), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, cached, err = e.Get(t.Context()); err != nil || cached || builds != 2 {
		t.Fatalf("a truncated console was used: %v, cached %v, %d builds", err, cached, builds)
	}

	// Three more of the same target, older: pruning keeps the newest two.
	now := time.Now()
	for i, key := range []string{"1111111111111111", "2222222222222222", "3333333333333333"} {
		if _, _, err := c.SnapshotEntry("6.1", "6.1-hardened", key, save).Get(t.Context()); err != nil {
			t.Fatal(err)
		}
		old := now.Add(-time.Duration(i+2) * 48 * time.Hour)
		os.Chtimes(filepath.Join(dir, "snapshots", "6.1-hardened-"+key, cachefs.ManifestName), old, old)
	}
	if _, _, err := c.SnapshotEntry("6.12", "6.12", "4444444444444444", save).Get(t.Context()); err != nil {
		t.Fatal(err)
	}
	plan, err := c.PrunePlan(now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range plan {
		got = append(got, filepath.Base(r.Path))
	}
	slices.Sort(got)
	if want := []string{"6.1-hardened-2222222222222222", "6.1-hardened-3333333333333333"}; !slices.Equal(got, want) {
		t.Errorf("prune plan %q, want %q", got, want)
	}
	plan, err = c.CleanPlan([]Kernel{{Name: "6.1"}, {Name: "6.12"}}, []Kernel{{Name: "6.1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range plan {
		if filepath.Base(r.Path) == "6.12-4444444444444444" {
			t.Errorf("cleaning 6.1 takes 6.12's saved guest")
		}
	}
	if len(plan) != 4 {
		t.Errorf("cleaning 6.1 takes %d entries, want its 4 saved guests", len(plan))
	}
}
