package kernels

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kmodtest/kmodtest/debian"
	"github.com/kmodtest/kmodtest/internal/atomicfile"
)

// StaleAfter is how old a cached kernel's package lists may get before
// Fetch compares the kernel with what Debian now publishes. The check
// costs an apt-get update of the kernel's suites (a few seconds), so it
// runs at most once a day per kernel, not on every warm run.
const StaleAfter = 24 * time.Hour

// checkedStamp is the file, in a kernel's apt directory, whose mtime is
// when its lists were last compared with the archive.
const checkedStamp = "checked"

// UpdateHint is how a user moves cached kernels to Debian's newest.
const UpdateHint = "go test ./vmtests -update (or KMODTEST_UPDATE=1), or go run ./cmd/kmodtest cache fetch -update"

// A Newer is a kernel Debian publishes that is newer than the cached one.
type Newer struct {
	Kernel                   string
	CachedRelease, CachedVer string
	Release, Version         string
}

func (n *Newer) String() string {
	if n.Release == n.CachedRelease {
		return fmt.Sprintf("%s: cached %s (%s), Debian now has %s (%s)", n.Kernel, n.CachedRelease, n.CachedVer, n.Release, n.Version)
	}
	return fmt.Sprintf("%s: cached %s, Debian now has %s", n.Kernel, n.CachedRelease, n.Release)
}

// dueForCheck reports whether the cached entry's lists are older than
// StaleAfter at now (by the stamp, else the entry's creation time).
func (c *Cache) dueForCheck(entry string, m *kernelManifest, now time.Time) bool {
	last := m.Created
	if fi, err := os.Stat(filepath.Join(c.aptDir(entry), checkedStamp)); err == nil {
		last = fi.ModTime()
	}
	return now.Sub(last) > StaleAfter
}

// aptDir is the private apt directory of a kernel entry.
func (c *Cache) aptDir(entry string) string {
	return filepath.Join(c.Dir, "apt", filepath.Base(entry))
}

// stampChecked records that entry's lists were compared with the archive now.
func (c *Cache) stampChecked(entry string) error {
	dir := c.aptDir(entry)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, checkedStamp), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
}

// checkNewer updates k's package lists and returns what Debian now
// publishes if it is newer than the cached m, else nil.
func (c *Cache) checkNewer(ctx context.Context, k Kernel, entry string, m *kernelManifest) (*Newer, error) {
	apt, err := c.updateLists(ctx, k, entry)
	if err != nil {
		return nil, err
	}
	release, version, err := resolveMeta(ctx, apt, k)
	if err != nil {
		return nil, err
	}
	if err := c.stampChecked(entry); err != nil {
		return nil, err
	}
	if debian.CompareVersions(version, m.Version) <= 0 {
		return nil, nil
	}
	return &Newer{Kernel: k.Name, CachedRelease: m.Release, CachedVer: m.Version, Release: release, Version: version}, nil
}

// refreshCached is the staleness check of a warm entry, run by fetch with
// the entry locked: at most daily (or always when c.Update), it compares
// the entry with the archive; with c.Update a newer kernel replaces it.
// A failed check or update (no network, a package gone from the mirror)
// is only logged: the cached kernel still serves. It returns the manifest to use and whether it was downloaded.
func (c *Cache) refreshCached(ctx context.Context, k Kernel, entry string, m *kernelManifest) (*kernelManifest, bool, error) {
	if !c.Update && !c.dueForCheck(entry, m, time.Now()) {
		return m, false, nil
	}
	newer, err := c.checkNewer(ctx, k, entry, m)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		c.logf("%s: could not compare the cached %s with Debian's archive, using it: %v", k.Name, m.Release, err)
		return m, false, nil
	}
	if newer == nil {
		c.logf("%s: cached %s (%s) is Debian's newest", k.Name, m.Release, m.Version)
		return m, false, nil
	}
	if !c.Update {
		c.logf("%s: to move to it: %s", newer, UpdateHint)
		return m, false, nil
	}
	c.logf("%s: updating", newer)
	nm, err := c.download(ctx, k, entry)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		// A weekly CI job asks for the update; an archive it cannot reach
		// must not turn a kernel that works into a red run.
		c.logf("%s: WARNING: could not fetch the newer kernel, keeping the cached %s: %v", k.Name, m.Release, err)
		return m, false, nil
	}
	return nm, true, nil
}
