package kernels

import (
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
	for _, e := range []string{"6.1-" + key, "6.12-" + key, "5.10-hardened-" + key, "5.10-" + key} {
		if err := os.MkdirAll(filepath.Join(dir, "snapshots", e), 0o755); err != nil {
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
