package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kmodtest/kmodtest/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// manifestName is the file written last into a finished cache entry.
// An entry without it was interrupted and is never used.
const manifestName = "manifest.json"

// DefaultCacheDir returns $KMODTEST_CACHE, else $XDG_CACHE_HOME/kmodtest,
// else ~/.cache/kmodtest.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("KMODTEST_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		if !filepath.IsAbs(d) {
			return "", fmt.Errorf("cache dir: XDG_CACHE_HOME=%q is not an absolute path", d)
		}
		return filepath.Join(d, "kmodtest"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w (set KMODTEST_CACHE)", err)
	}
	return filepath.Join(home, ".cache", "kmodtest"), nil
}

// A Cache holds fetched kernels, build roots and built modules under Dir.
// Its methods are safe for concurrent use by goroutines and processes.
type Cache struct {
	Dir string
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// chooser returns the mirror chooser for this cache's downloads.
func (c *Cache) chooser() *MirrorChooser {
	return &MirrorChooser{Logf: c.Logf}
}

// logf calls c.Logf if set.
func (c *Cache) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// Fetched is a kernel ready to boot and to build modules for.
type Fetched struct {
	Kernel Kernel
	// Release is the kernel's uname -r.
	Release string
	// Vmlinuz is the bootable kernel image.
	Vmlinuz string
	// KDIR is the headers tree to pass to make -C.
	KDIR string
	// Modules is the kernel's /lib/modules/RELEASE directory when the
	// image package carries the modules (Debian's ≤6.x images do), else "".
	Modules string
	// Tree is the root of the extracted packages (holds usr/src/...).
	Tree string
	// Version is the Debian version of the packages.
	Version string
	// Timings says where the time went; Cached is true when nothing was
	// downloaded or built.
	Timings Timings
	// root is the build root directory, "" for host builds.
	root string
}

// Timings are the durations of the steps of a Fetch (and, for callers that
// record it, of a module build).
type Timings struct {
	Fetch, BuildRoot, ModuleBuild time.Duration
	Cached                        bool
}

// kernelManifest is the manifest of a kernel entry. Paths are relative to
// the entry so the cache directory can move.
type kernelManifest struct {
	Kernel        string    `json:"kernel"`
	Release       string    `json:"release"`
	Version       string    `json:"version"`
	Packages      []string  `json:"packages"`
	Vmlinuz       string    `json:"vmlinuz"`
	VmlinuzSize   int64     `json:"vmlinuz_size"`
	VmlinuzSHA256 string    `json:"vmlinuz_sha256"`
	KDIR          string    `json:"kdir"`
	Modules       string    `json:"modules,omitempty"`
	Created       time.Time `json:"created"`
}

// definitionHash identifies the parts of v that decide what gets
// downloaded: editing a matrix entry gives it a fresh cache entry.
func definitionHash(v any) string {
	data, _ := json.Marshal(v)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:12]
}

// kernelKey is the cache entry name for k.
func kernelKey(k Kernel) string {
	def := struct {
		Apt                                    []string
		ImageMeta, HeadersMeta, Image, Vmlinuz string
		// Arch is left out for amd64 so that entries older than the
		// field keep their cache key.
		Arch string `json:",omitempty"`
	}{k.Apt, k.ImageMeta, k.HeadersMeta, k.Image, k.Vmlinuz, ""}
	if k.Arch != "" && k.Arch != ArchAMD64 {
		def.Arch = k.Arch
	}
	return k.Name + "-" + definitionHash(def)
}

// Fetch makes sure k's image and headers are in the cache (downloading
// them with apt if not, or if the cached copy fails verification) and,
// for kernels built in a build root, that the root exists.
func (c *Cache) Fetch(ctx context.Context, k Kernel) (*Fetched, error) {
	f, err := c.fetch(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("fetch kernel %s: %w", k.Name, checkDiskFull(c.Dir, err))
	}
	return f, nil
}

func (c *Cache) fetch(ctx context.Context, k Kernel) (*Fetched, error) {
	if c.Dir == "" {
		return nil, errors.New("cache has no Dir")
	}
	if k.Toolchain != HostToolchain && k.Root == nil {
		return nil, fmt.Errorf("toolchain %q has no build root definition (use a Kernel from LoadMatrix)", k.Toolchain)
	}
	start := time.Now()
	key := kernelKey(k)
	entry := filepath.Join(c.Dir, "kernels", key)

	unlock, err := lockFile(ctx, filepath.Join(c.Dir, "locks", "kernel-"+key+".lock"), c.logf)
	if err != nil {
		return nil, err
	}
	m, err := readKernelManifest(entry)
	cached := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		c.logf("cache: %s entry corrupt (%v), refetching", k.Name, err)
	}
	if !cached {
		m, err = c.download(ctx, k, entry)
	}
	unlock()
	if err != nil {
		return nil, err
	}
	f := &Fetched{
		Kernel:  k,
		Release: m.Release,
		Version: m.Version,
		Vmlinuz: filepath.Join(entry, m.Vmlinuz),
		KDIR:    filepath.Join(entry, m.KDIR),
		Tree:    filepath.Join(entry, "tree"),
	}
	if m.Modules != "" {
		f.Modules = filepath.Join(entry, m.Modules)
	}
	f.Timings.Fetch = time.Since(start)

	rootCached := true
	if k.Root != nil {
		rootStart := time.Now()
		f.root, rootCached, err = c.ensureRoot(ctx, k.Root)
		if err != nil {
			return nil, err
		}
		f.Timings.BuildRoot = time.Since(rootStart)
	}
	f.Timings.Cached = cached && rootCached
	if !f.Timings.Cached {
		c.logf("fetch %s: done in %.1fs (%s)", k.Name, time.Since(start).Seconds(), m.Release)
	}
	return f, nil
}

// loadManifest decodes dir's manifest into v. A missing entry gives an
// error matching os.ErrNotExist; an entry without a manifest (an
// interrupted write) or with a bad one gives another error.
func loadManifest(dir string, v any) error {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(dir); serr == nil {
				return errors.New("no manifest")
			}
		}
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("bad manifest: %v", err)
	}
	return nil
}

// readKernelManifest reads and verifies a kernel entry: the vmlinuz must
// have the recorded size and sha256 and KDIR must have its Makefile.
// A missing entry gives an error matching os.ErrNotExist.
func readKernelManifest(entry string) (*kernelManifest, error) {
	var m kernelManifest
	if err := loadManifest(entry, &m); err != nil {
		return nil, err
	}
	if m.Release == "" || m.Vmlinuz == "" || m.KDIR == "" {
		return nil, errors.New("incomplete manifest")
	}
	size, sum, err := fileSHA256(filepath.Join(entry, m.Vmlinuz))
	if err != nil {
		return nil, fmt.Errorf("vmlinuz: %v", errors.Unwrap(err))
	}
	if size != m.VmlinuzSize {
		return nil, fmt.Errorf("vmlinuz size %d, manifest says %d", size, m.VmlinuzSize)
	}
	if sum != m.VmlinuzSHA256 {
		return nil, errors.New("vmlinuz sha256 mismatch")
	}
	if _, err := os.Stat(filepath.Join(entry, m.KDIR, "Makefile")); err != nil {
		return nil, errors.New("KDIR Makefile missing")
	}
	return &m, nil
}

// fileSHA256 returns the size and hex sha256 of a file.
func fileSHA256(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// writeFileAtomic writes data to path so that readers see the old or the
// new file, never a part.
func writeFileAtomic(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, 0o644)
}

// writeJSON writes v as indented JSON to path, atomically.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(data, '\n'))
}

// newTempDir creates a temporary directory next to final, after removing
// leftovers of interrupted attempts. Callers hold final's lock, so any
// leftover belongs to a process that died.
func newTempDir(final string) (string, error) {
	parent, base := filepath.Split(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	old, _ := filepath.Glob(filepath.Join(parent, ".tmp-"+base+"-*"))
	for _, o := range old {
		if err := removeAll(o); err != nil {
			return "", fmt.Errorf("remove interrupted %s: %w", o, err)
		}
	}
	return os.MkdirTemp(parent, ".tmp-"+base+"-")
}

// A staging directory is where a cache entry is built. commit writes the
// entry's manifest, last, and renames the directory into place; a deferred
// discard removes it when commit was never reached.
type staging struct {
	dir, final string
	done       bool
}

// stage creates the staging directory for final.
func stage(final string) (*staging, error) {
	dir, err := newTempDir(final)
	if err != nil {
		return nil, err
	}
	return &staging{dir: dir, final: final}, nil
}

func (s *staging) commit(manifest any) error {
	if err := writeJSON(filepath.Join(s.dir, manifestName), manifest); err != nil {
		return err
	}
	if err := commitDir(s.dir, s.final); err != nil {
		return err
	}
	s.done = true
	return nil
}

func (s *staging) discard() {
	if !s.done {
		removeAll(s.dir)
	}
}

// commitDir replaces final with the finished tmp directory.
func commitDir(tmp, final string) error {
	if _, err := os.Stat(final); err == nil {
		if err := removeAll(final); err != nil {
			return fmt.Errorf("remove old %s: %w", final, err)
		}
	}
	return os.Rename(tmp, final)
}

// Clean removes everything in the cache.
func (c *Cache) Clean() error {
	if c.Dir == "" {
		return errors.New("clean cache: no Dir")
	}
	if err := removeAll(c.Dir); err != nil {
		return fmt.Errorf("clean cache %s: %w", c.Dir, err)
	}
	return nil
}

// Custom describes a kernel the user built: vmlinuz is its bzImage and
// kdir the build tree (with include/config/kernel.release and
// Module.symvers). Its modules are built with the host's compiler.
func Custom(vmlinuz, kdir string) (*Fetched, error) {
	vmlinuz, err := filepath.Abs(vmlinuz)
	if err != nil {
		return nil, fmt.Errorf("custom kernel: %w", err)
	}
	kdir, err = filepath.Abs(kdir)
	if err != nil {
		return nil, fmt.Errorf("custom kernel: %w", err)
	}
	if _, err := os.Stat(vmlinuz); err != nil {
		return nil, fmt.Errorf("custom kernel: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(kdir, "include", "config", "kernel.release"))
	if err != nil {
		return nil, fmt.Errorf("custom kernel: read release (is %s a built kernel tree?): %w", kdir, err)
	}
	release := strings.TrimSpace(string(data))
	if release == "" {
		return nil, fmt.Errorf("custom kernel: %s/include/config/kernel.release is empty", kdir)
	}
	if _, err := os.Stat(filepath.Join(kdir, "Module.symvers")); err != nil {
		return nil, fmt.Errorf("custom kernel: %s has no Module.symvers: run make modules in it first", kdir)
	}
	return &Fetched{
		Kernel: Kernel{
			Name:      "custom-" + release,
			Arch:      ArchAMD64,
			Suite:     "custom",
			Toolchain: HostToolchain,
			Profiles:  []string{"default"},
		},
		Release: release,
		Vmlinuz: vmlinuz,
		KDIR:    kdir,
		Timings: Timings{Cached: true},
	}, nil
}
