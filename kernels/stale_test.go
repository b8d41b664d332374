package kernels

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/internal/proc"
)

// localRepo writes a flat apt repository (trusted=yes, no network) whose
// linux-image-amd64 is at version and depends on linux-image-RELEASE.
func localRepo(t *testing.T, release, version string) string {
	t.Helper()
	dir := t.TempDir()
	packages := fmt.Sprintf("Package: linux-image-amd64\nVersion: %s\nArchitecture: amd64\nDepends: linux-image-%s (= %s)\nFilename: ./x.deb\nSize: 1000\nDescription: fake\n\n", version, release, version)
	sum := sha256.Sum256([]byte(packages))
	rel := fmt.Sprintf("Date: %s\nSHA256:\n %s %d Packages\n", time.Now().UTC().Format(time.RFC1123), hex.EncodeToString(sum[:]), len(packages))
	os.WriteFile(filepath.Join(dir, "Packages"), []byte(packages), 0o644)
	os.WriteFile(filepath.Join(dir, "Release"), []byte(rel), 0o644)
	return dir
}

// TestStaleKernelReported runs the real apt against a local repository
// that has a newer kernel than the cached entry: a warm fetch whose lists
// are older than a day says so and how to move; a fresh stamp keeps the
// next warm fetch from asking again.
func TestStaleKernelReported(t *testing.T) {
	k, dir, entry := cachedOlderKernel(t)
	c, logs := logCache(t)
	c.Dir = dir

	// A day-old check: compared, reported, not replaced.
	os.MkdirAll(c.aptDir(entry), 0o755)
	stamp := filepath.Join(c.aptDir(entry), checkedStamp)
	os.WriteFile(stamp, nil, 0o644)
	old := time.Now().Add(-StaleAfter - time.Hour)
	os.Chtimes(stamp, old, old)
	f, err := c.Fetch(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	if f.Release != "1.0-amd64" || !f.Timings.Cached {
		t.Fatalf("without Update the cached kernel must serve: %+v", f)
	}
	joined := logs()
	if want := "1.0: cached 1.0-amd64, Debian now has 1.0-2-amd64: to move to it: " + UpdateHint; !strings.Contains(joined, want) {
		t.Fatalf("log lacks %q:\n%s", want, joined)
	}

	// Checked just now: the next warm fetch runs no apt.
	if _, err := c.Fetch(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(logs(), "\n") {
		if strings.Contains(l, "apt-get update") || strings.Contains(l, "Debian now has") {
			t.Fatalf("a fresh check was repeated: %s", l)
		}
	}

	// A repository with the cached version: nothing newer.
	k.Apt = []string{"deb [trusted=yes] file:" + localRepo(t, "1.0-amd64", "1.0-1") + " ./"}
	newer, err := c.checkNewer(t.Context(), k, entry, &kernelManifest{Release: "1.0-amd64", Version: "1.0-1"})
	if err != nil || newer != nil {
		t.Fatalf("same version reported as newer: %v, %v", newer, err)
	}
}

func TestNewerString(t *testing.T) {
	n := &Newer{Kernel: "6.1", CachedRelease: "6.1.0-56-amd64", CachedVer: "6.1.192-2", Release: "6.1.0-57-amd64", Version: "6.1.195-1"}
	if got, want := n.String(), "6.1: cached 6.1.0-56-amd64, Debian now has 6.1.0-57-amd64"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	n.Release = n.CachedRelease
	if got := n.String(); !strings.Contains(got, "(6.1.192-2), Debian now has 6.1.0-56-amd64 (6.1.195-1)") {
		t.Errorf("same ABI, new upload: %q", got)
	}
}

// TestUpdateKeepsCachedWhenDownloadFails: with Update, a newer kernel
// that cannot be downloaded (the archive is gone, a package went
// missing) leaves the cached kernel serving, with a warning.
func TestUpdateKeepsCachedWhenDownloadFails(t *testing.T) {
	// The repository lists a newer kernel whose package file is missing.
	k, dir, _ := cachedOlderKernel(t)
	c, logs := logCache(t)
	c.Dir, c.Update = dir, true
	f, err := c.Fetch(t.Context(), k)
	if err != nil {
		t.Fatalf("an update that cannot download failed the fetch: %v", err)
	}
	if f.Release != "1.0-amd64" {
		t.Errorf("release %s, want the cached 1.0-amd64", f.Release)
	}
	if joined := logs(); !strings.Contains(joined, "WARNING: could not fetch the newer kernel, keeping the cached 1.0-amd64") {
		t.Errorf("no warning that the cached kernel was kept:\n%s", joined)
	}
}

// cachedOlderKernel returns a kernel whose local repository (run by the
// real apt) has 1.0-2-amd64 (1.0-2), without its package file, and a
// cache directory whose entry for it holds 1.0-amd64 (1.0-1).
func cachedOlderKernel(t *testing.T) (k Kernel, dir, entry string) {
	t.Helper()
	if err := proc.NeedTool("apt-get"); err != nil {
		t.Skip(err)
	}
	fakeCompiler(t, "gcc", fakeCCText)
	repo := localRepo(t, "1.0-2-amd64", "1.0-2")
	k = Kernel{Name: "1.0", Suite: "local", Apt: []string{"deb [trusted=yes] file:" + repo + " ./"},
		ImageMeta: "linux-image-amd64", HeadersMeta: "linux-headers-amd64", Image: "linux-image-{release}",
		Vmlinuz: "boot/vmlinuz-{release}", Toolchain: HostToolchain, Profiles: []string{"default"}}
	dir = t.TempDir()
	entry = filepath.Join(dir, "kernels", kernelKey(k))
	fakeKernelEntry(t, entry)
	return k, dir, entry
}
