package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/debian"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/userpath"
)

// DefaultCacheDir returns $KMODTEST_CACHE, else $XDG_CACHE_HOME/kmodtest,
// else ~/.cache/kmodtest. A relative KMODTEST_CACHE is taken from the
// directory the command was started in (see internal/userpath), not
// from the test binary's package directory.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("KMODTEST_CACHE"); d != "" {
		return userpath.Resolve(d)
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
	// Update makes Fetch compare every cached kernel with what Debian
	// now publishes and move to a newer one. Without it the comparison
	// runs at most once a day per kernel (StaleAfter) and only says so.
	Update bool
}

// chooser returns the mirror chooser for this cache's downloads.
func (c *Cache) chooser() *debian.MirrorChooser {
	return &debian.MirrorChooser{Logf: c.Logf}
}

// claim makes sure c.Dir is a kmodtest cache (see cachefs.Claim) before
// anything is written into it.
func (c *Cache) claim() error {
	if c.Dir == "" {
		return errors.New("cache has no Dir")
	}
	return cachefs.Claim(c.Dir)
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
	if k.Arch != "" && k.Arch != arch.AMD64 {
		def.Arch = string(k.Arch)
	}
	return k.Name + "-" + definitionHash(def)
}

// Fetch makes sure k's image and headers are in the cache (downloading
// them with apt if not, or if the cached copy fails verification) and,
// for kernels built in a build root, that the root exists.
func (c *Cache) Fetch(ctx context.Context, k Kernel) (*Fetched, error) {
	f, err := c.fetch(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("fetch kernel %s: %w", k.Name, cachefs.CheckDiskFull(c.Dir, err))
	}
	return f, nil
}

func (c *Cache) fetch(ctx context.Context, k Kernel) (*Fetched, error) {
	if err := c.claim(); err != nil {
		return nil, err
	}
	if k.Toolchain != HostToolchain && k.Root == nil {
		return nil, fmt.Errorf("toolchain %q has no build root definition (use a Kernel from LoadMatrix)", k.Toolchain)
	}
	start := time.Now()
	// A kernel whose root the matrix names gets it made while its
	// packages download: on a cold cache the two overlap instead of
	// adding up. A host-toolchain kernel knows whether it needs a root
	// only once its headers are here.
	var early chan rootResult
	rootCtx, stopRoot := context.WithCancel(ctx)
	defer stopRoot()
	if k.Toolchain != HostToolchain {
		early = make(chan rootResult, 1)
		go func() { early <- c.timedRoot(rootCtx, k.Root) }()
	}
	// fail stops the root and waits for it: nothing the fetch started
	// outlives it.
	fail := func(err error) (*Fetched, error) {
		stopRoot()
		if early != nil {
			<-early
		}
		return nil, err
	}
	var err error
	key := kernelKey(k)
	if k.Source != nil {
		if key, err = sourceKey(ctx, k); err != nil {
			return fail(err)
		}
	}
	entry := filepath.Join(c.Dir, "kernels", key)

	unlock, err := cachefs.Lock(ctx, filepath.Join(c.Dir, "locks", "kernel-"+key+".lock"), c.logf)
	if err != nil {
		return fail(err)
	}
	m, err := readKernelManifest(entry)
	cached := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		c.logf("cache: %s entry corrupt (%v), refetching", k.Name, err)
	}
	if !cached && k.Source != nil {
		m, err = c.buildSource(ctx, k, entry)
	} else if !cached {
		m, err = c.download(ctx, k, entry)
	} else if k.Source == nil {
		// A source kernel stays on the version it was built from: a
		// newer source package means a new 20-minute build, which only
		// removing the entry (kmodtest-cache clean) asks for.
		var downloaded bool
		m, downloaded, err = c.refreshCached(ctx, k, entry, m)
		cached = !downloaded
	}
	unlock()
	if err != nil {
		return fail(err)
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

	root := k.Root
	if k.Toolchain == HostToolchain {
		var why string
		root, why, err = chooseRoot(ctx, k, f.KDIR)
		if err != nil {
			return nil, err
		}
		c.logf("toolchain %s: %s", k.Name, why)
	}
	if root != nil && k.Toolchain == HostToolchain && os.Geteuid() != 0 {
		// Decided only now that the headers are here: the preflight
		// could not know this kernel needs a build root.
		if err := NewPreflight().checkUserns(ctx, []string{k.Name}); err != nil {
			return nil, &PreflightError{Problems: []string{err.Error()}}
		}
	}
	rootCached := true
	if root != nil {
		if early == nil {
			early = make(chan rootResult, 1)
			early <- c.timedRoot(ctx, root)
		}
		r := <-early
		if r.err != nil {
			return nil, r.err
		}
		f.root, rootCached, f.Timings.BuildRoot = r.dir, r.cached, r.took
	}
	f.Timings.Cached = cached && rootCached
	if !f.Timings.Cached {
		c.logf("fetch %s: done in %.1fs (%s)", k.Name, time.Since(start).Seconds(), m.Release)
	}
	return f, nil
}

// A rootResult is a build root made (or found) for a fetch.
type rootResult struct {
	dir    string
	cached bool
	took   time.Duration
	err    error
}

func (c *Cache) timedRoot(ctx context.Context, r *BuildRoot) rootResult {
	start := time.Now()
	dir, cached, err := c.ensureRoot(ctx, r)
	return rootResult{dir: dir, cached: cached, took: time.Since(start), err: err}
}

// readKernelManifest reads and verifies a kernel entry: the vmlinuz must
// have the recorded size and sha256 and KDIR must have its Makefile.
// A missing entry gives an error matching os.ErrNotExist.
func readKernelManifest(entry string) (*kernelManifest, error) {
	var m kernelManifest
	if err := cachefs.LoadManifest(entry, &m); err != nil {
		return nil, err
	}
	if m.Release == "" || m.Vmlinuz == "" || m.KDIR == "" {
		return nil, errors.New("incomplete manifest")
	}
	vmlinuz := cachefs.FileSum{Path: m.Vmlinuz, Size: m.VmlinuzSize, SHA256: m.VmlinuzSHA256}
	if err := vmlinuz.Verify(entry); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(entry, m.KDIR, "Makefile")); err != nil {
		return nil, errors.New("KDIR Makefile missing")
	}
	cachefs.MarkUsed(entry)
	return &m, nil
}

// Custom describes a kernel the user built: vmlinuz is its bzImage and
// kdir the build tree (with include/config/kernel.release and
// Module.symvers). Its modules are built with the host's compiler.
//
// Relative paths are taken from the directory the command was started in
// (see internal/userpath).
func Custom(vmlinuz, kdir string) (*Fetched, error) {
	vmlinuz, err := userpath.Resolve(vmlinuz)
	if err != nil {
		return nil, fmt.Errorf("custom kernel: %w", err)
	}
	kdir, err = userpath.Resolve(kdir)
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
			Arch:      arch.AMD64,
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
