package kernels

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/internal/cachefs"
)

// A Removal is one cache entry that cleaning or pruning removes.
type Removal struct {
	// Path is the entry; Size its size in bytes.
	Path string
	Size int64
	// lock is the entry's lock file, taken while it is removed.
	lock string
}

// lockPrefix names each cache subdirectory's lock files: the lock of
// entry SUB/NAME is locks/PREFIX-NAME.lock.
var lockPrefix = map[string]string{
	"kernels":   "kernel",
	"apt":       "kernel",
	"modules":   "module",
	"roots":     "root",
	"vmlinux":   "vmlinux",
	"initramfs": "initramfs",
	"snapshots": "snapshot",
	"work":      "work",
}

// entryLock returns the lock file of entry name in subdirectory sub.
// Staging directories (.tmp-NAME-RANDOM) share their entry's lock.
func (c *Cache) entryLock(sub, name string) string {
	if rest, ok := strings.CutPrefix(name, ".tmp-"); ok {
		if i := strings.LastIndex(rest, "-"); i > 0 {
			name = rest[:i]
		}
	}
	return filepath.Join(c.Dir, "locks", lockPrefix[sub]+"-"+name+".lock")
}

// CleanPlan lists what cleaning removes. With only empty, that is every
// entry kmodtest made in the cache (the lock files stay: a running test
// may be waiting on one). Otherwise it is the entries of the kernels in
// only: their packages, apt state, modules and extracted vmlinux, and the
// build roots that no kernel of matrix outside only uses. A directory
// without the cache marker is refused whole.
func (c *Cache) CleanPlan(matrix, only []Kernel) ([]Removal, error) {
	return c.plan(func(sub string, e fs.DirEntry, remove func()) {
		if len(only) == 0 || c.selected(sub, e.Name(), matrix, only) {
			remove()
		}
	})
}

// plan calls pick for every entry of the cache's subdirectories (the
// lock files excepted) and returns those for which pick called remove.
// A directory kmodtest does not own is refused whole.
func (c *Cache) plan(pick func(sub string, e fs.DirEntry, remove func())) ([]Removal, error) {
	if exists, err := cachefs.CheckOwned(c.Dir); !exists || err != nil {
		return nil, err
	}
	var plan []Removal
	for _, sub := range cachefs.Subdirs {
		if sub == "locks" {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(c.Dir, sub))
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		for _, e := range entries {
			pick(sub, e, func() { plan = append(plan, c.removal(sub, e.Name())) })
		}
	}
	return plan, nil
}

// removal describes entry sub/name for removing.
func (c *Cache) removal(sub, name string) Removal {
	p := filepath.Join(c.Dir, sub, name)
	return Removal{Path: p, Size: diskUsage(p), lock: c.entryLock(sub, name)}
}

// selected reports whether entry sub/name belongs to the kernels in only.
func (c *Cache) selected(sub, name string, matrix, only []Kernel) bool {
	name = strings.TrimPrefix(name, ".tmp-")
	for _, k := range only {
		switch sub {
		case "kernels", "apt", "work":
			if keyOf(k.Name, 12).MatchString(name) {
				return true
			}
		case "modules":
			if keyOf(k.Name, 24).MatchString(name) {
				return true
			}
		case "vmlinux", "dbg", "snapshots":
			var m cachefs.FileManifest
			if cachefs.LoadManifest(filepath.Join(c.Dir, sub, name), &m) == nil && m.Owner == k.Name {
				return true
			}
		case "roots":
			if k.Root == nil || !keyOf(k.Root.Name, 12).MatchString(name) {
				continue
			}
			shared := slices.ContainsFunc(matrix, func(o Kernel) bool {
				return o.Toolchain == k.Toolchain && !slices.ContainsFunc(only, func(s Kernel) bool { return s.Name == o.Name })
			})
			if !shared {
				return true
			}
		}
	}
	return false
}

// keyOf matches the entry names of name: name, a dash and a hash of n hex
// digits, with an optional staging suffix.
func keyOf(name string, n int) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`^%s-[0-9a-f]{%d}(-[0-9]+)?$`, regexp.QuoteMeta(name), n))
}

// removeIdle removes the entries of plan that nobody holds, each under
// its lock, and returns them and the bytes freed. It never waits: an
// entry whose lock is held is in use (a kernel being fetched or built,
// maybe one this run did not even select), so it is not garbage now.
func (c *Cache) removeIdle(plan []Removal) (removed []Removal, freed int64, err error) {
	for _, r := range plan {
		unlock, ok := cachefs.TryLock(r.lock)
		if !ok {
			continue
		}
		err := cachefs.RemoveAll(c.Dir, r.Path)
		unlock()
		if err != nil {
			return removed, freed, fmt.Errorf("remove %s: %w", r.Path, err)
		}
		removed = append(removed, r)
		freed += r.Size
	}
	return removed, freed, nil
}

// Remove removes the entries of plan, each under its lock, and returns
// the bytes freed.
func (c *Cache) Remove(ctx context.Context, plan []Removal) (int64, error) {
	var freed int64
	for _, r := range plan {
		unlock, err := cachefs.Lock(ctx, r.lock, c.Logf)
		if err != nil {
			return freed, err
		}
		err = cachefs.RemoveAll(c.Dir, r.Path)
		unlock()
		if err != nil {
			return freed, fmt.Errorf("remove %s: %w", r.Path, err)
		}
		freed += r.Size
	}
	return freed, nil
}

// diskUsage returns the size of the files under path.
func diskUsage(path string) int64 {
	var n int64
	filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// A Status says what the cache holds for one kernel.
type Status struct {
	// Release is the cached kernel's uname -r, "" if it is not cached.
	Release string
	// Size is the bytes of its entries: packages, apt state, modules and
	// vmlinux (build roots are shared and not counted).
	Size int64
}

// Status reports what the cache holds for k, without verifying it.
func (c *Cache) Status(ctx context.Context, k Kernel) Status {
	var st Status
	key := kernelKey(k)
	if k.Source != nil {
		// A source kernel's entry is named by its fragment and compiler.
		if key, _ = sourceKey(ctx, k); key == "" {
			return st
		}
	}
	var m kernelManifest
	if cachefs.LoadManifest(filepath.Join(c.Dir, "kernels", key), &m) == nil {
		st.Release = m.Release
	}
	for _, sub := range []string{"kernels", "apt", "modules", "vmlinux", "work"} {
		entries, _ := os.ReadDir(filepath.Join(c.Dir, sub))
		for _, e := range entries {
			if c.selected(sub, e.Name(), nil, []Kernel{k}) {
				st.Size += diskUsage(filepath.Join(c.Dir, sub, e.Name()))
			}
		}
	}
	return st
}

// Pruning policy: the newest module builds of each kernel stay, so that
// switching between a few branches rebuilds nothing; anything unused for
// a month goes; leftovers of interrupted builds go after a day. A module
// used in the last day is never pruned: a run builds its module and every
// fixture up front and boots them over its whole length (make test: 13
// builds per kernel, up to an hour), so a build that waits for its boot
// must not be taken for an old one.
const (
	keepModules = 8
	// keepSnapshots: the saved guest of the current guest sources and
	// one more (two checkouts, or a branch and main).
	keepSnapshots = 2
	maxUnused     = 30 * 24 * time.Hour
	recentUse     = 24 * time.Hour
	staleStaged   = 24 * time.Hour
)

// PrunePlan lists the entries that pruning removes at time now: module
// builds beyond the newest keepModules per kernel (by last use) not used
// for recentUse, entries
// unused for maxUnused, apt state whose kernel entry is gone, vmlinux
// files of the old layout and staging leftovers older than a day.
func (c *Cache) PrunePlan(now time.Time) ([]Removal, error) {
	type module struct {
		name string
		used time.Time
	}
	modules := map[string][]module{}   // kernel -> its module builds
	snapshots := map[string][]module{} // target -> its saved guests
	plan, err := c.plan(func(sub string, e fs.DirEntry, remove func()) {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, ".tmp-"):
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > staleStaged {
				remove()
			}
			return
		case sub == "vmlinux" && !e.IsDir():
			remove() // the old layout, one .elf file per kernel
			return
		case sub == "apt":
			if _, err := os.Stat(filepath.Join(c.Dir, "kernels", name)); err != nil {
				remove()
			}
			return
		case sub == "work":
			// A build directory has no manifest; every build there
			// renews its marker, and so the directory's time.
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > maxUnused {
				remove()
			}
			return
		}
		used, err := cachefs.LastUsed(filepath.Join(c.Dir, sub, name))
		if err != nil {
			// No manifest: not finished, or not ours to judge; but saved
			// guests of before snapshots had manifests go after a day.
			if fi, ferr := e.Info(); sub == "snapshots" && ferr == nil && now.Sub(fi.ModTime()) > staleStaged {
				remove()
			}
			return
		}
		if now.Sub(used) > maxUnused {
			remove()
			return
		}
		if i := strings.LastIndex(name, "-"); sub == "modules" && i > 0 {
			modules[name[:i]] = append(modules[name[:i]], module{name, used})
		}
		if i := strings.LastIndex(name, "-"); sub == "snapshots" && i > 0 {
			snapshots[name[:i]] = append(snapshots[name[:i]], module{name, used})
		}
	})
	if err != nil {
		return nil, err
	}
	for sub, groups := range map[string]map[string][]module{"modules": modules, "snapshots": snapshots} {
		keep := keepModules
		if sub == "snapshots" {
			keep = keepSnapshots
		}
		for _, ms := range groups {
			slices.SortFunc(ms, func(a, b module) int { return b.used.Compare(a.used) })
			for i := keep; i < len(ms); i++ {
				if now.Sub(ms[i].used) > recentUse {
					plan = append(plan, c.removal(sub, ms[i].name))
				}
			}
		}
	}
	return plan, nil
}

// prune removes what PrunePlan lists and nobody holds, and logs it;
// failures are logged too: pruning never fails, nor waits for, the
// build that triggered it.
func (c *Cache) prune() {
	plan, err := c.PrunePlan(time.Now())
	if err == nil && len(plan) > 0 {
		var removed []Removal
		var freed int64
		removed, freed, err = c.removeIdle(plan)
		var names []string
		for _, r := range removed {
			names = append(names, strings.TrimPrefix(r.Path, c.Dir+"/"))
		}
		if len(removed) > 0 {
			c.logf("cache: pruned %d old entries, %.1f MB (%s)", len(removed), float64(freed)/(1<<20), strings.Join(names, " "))
		}
	}
	if err != nil {
		c.logf("cache: prune: %v", err)
	}
}

// SnapshotEntry returns the cache entry of a saved guest of target (a
// kernel of the matrix with a boot profile) whose inputs hash to key:
// the guest's state, the console of the boot that made it and its
// initramfs, which a restore must name again. build boots and saves the
// guest (state is the path of the state file; the other two go beside
// it). Like every entry it is built once under its lock, staged and
// renamed, verified on use, pruned (the newest keepSnapshots of a target
// stay) and cleaned with its kernel.
func (c *Cache) SnapshotEntry(kernel, target, key string, build func(ctx context.Context, state string) error) *cachefs.FileEntry {
	name := target + "-" + key
	return &cachefs.FileEntry{
		Root:  c.Dir,
		Dir:   filepath.Join(c.Dir, "snapshots", name),
		Name:  SnapshotState,
		Also:  []string{SnapshotConsole, SnapshotInitramfs},
		Lock:  c.entryLock("snapshots", name),
		Owner: kernel,
		Kind:  "saved guest of " + target,
		Logf:  c.Logf,
		Build: build,
	}
}

// The files of a snapshot entry.
const (
	SnapshotState     = "state"
	SnapshotConsole   = "console.log"
	SnapshotInitramfs = "initramfs.cpio"
)
