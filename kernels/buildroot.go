package kernels

import (
	"context"
	"errors"
	"fmt"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Mount points every build root has, made when the root is created so
// that builds never need to write into the root.
const (
	rootKernelDir = "/kmodtest/kernel" // the kernel's extracted packages
	rootSrcDir    = "/kmodtest/src"    // the module source being built
)

// rootManifest is the manifest of a finished build root.
type rootManifest struct {
	Name     string   `json:"name"`
	Suite    string   `json:"suite"`
	Packages []string `json:"packages"`
	Mode     string   `json:"mode"`
	// Files are the root's tools (make, the compilers), checked on use.
	// Roots made before they were recorded have none.
	Files   []cachefs.FileSum `json:"files,omitempty"`
	Created time.Time         `json:"created"`
}

// rootKey is the cache entry name for r.
func rootKey(r *BuildRoot) string {
	def := struct {
		Suite    string
		Apt      []string
		Packages []string
	}{r.Suite, r.Apt, r.Packages}
	return r.Name + "-" + definitionHash(def)
}

// ensureRoot returns the directory of build root r, creating it with
// mmdebstrap if the cache does not hold a finished one. Concurrent callers
// for the same root wait for the one that creates it.
func (c *Cache) ensureRoot(ctx context.Context, r *BuildRoot) (dir string, cached bool, err error) {
	key := rootKey(r)
	final := filepath.Join(c.Dir, "roots", key)
	unlock, err := cachefs.Lock(ctx, filepath.Join(c.Dir, "locks", "root-"+key+".lock"), c.logf)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	err = checkRoot(final)
	if err == nil {
		return final, true, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		c.logf("cache: build root %s corrupt (%v), recreating", r.Name, err)
	}
	if err := c.createRoot(ctx, r, final); err != nil {
		return "", false, fmt.Errorf("build root %s: %w", r.Name, err)
	}
	return final, false, nil
}

// checkRoot verifies a finished build root: manifest, mount points and
// make present, and its tools as recorded.
func checkRoot(dir string) error {
	var m rootManifest
	if err := cachefs.LoadManifest(dir, &m); err != nil {
		return err
	}
	for _, p := range []string{"root/usr/bin/make", "root" + rootKernelDir, "root" + rootSrcDir} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			return fmt.Errorf("%s missing", p)
		}
	}
	for _, f := range m.Files {
		if err := f.Verify(dir); err != nil {
			return err
		}
	}
	cachefs.MarkUsed(dir)
	return nil
}

// rootTools records the root's make and compilers: the files a build
// depends on most, cheap to hash on every use (a root has 400 MB).
// Only regular files count: a link may point out of the root.
func rootTools(dir string) ([]cachefs.FileSum, error) {
	names, _ := filepath.Glob(filepath.Join(dir, "root", "usr", "bin", "*gcc*"))
	names = append(names, filepath.Join(dir, "root", "usr", "bin", "make"))
	var sums []cachefs.FileSum
	for _, p := range names {
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		rel, _ := filepath.Rel(dir, p)
		s, err := cachefs.SumFile(dir, rel)
		if err != nil {
			return nil, err
		}
		sums = append(sums, s)
	}
	return sums, nil
}

// createRoot runs mmdebstrap. As root it writes the directory directly
// (--mode=root); otherwise it uses --mode=unshare (needs subordinate ids in
// /etc/subuid and /etc/subgid) to a tarball that is unpacked as the user,
// so the user owns, and can later delete, every file.
func (c *Cache) createRoot(ctx context.Context, r *BuildRoot, final string) error {
	if err := needTool("mmdebstrap"); err != nil {
		return err
	}
	st, err := cachefs.Stage(c.Dir, final)
	if err != nil {
		return err
	}
	defer st.Discard()
	tmp := st.Dir
	start := time.Now()
	c.logf("build root %s: mmdebstrap %s with %s…", r.Name, r.Suite, strings.Join(r.Packages, ","))
	mode := "root"
	target := filepath.Join(tmp, "root")
	if os.Geteuid() != 0 {
		mode = "unshare"
		target = filepath.Join(tmp, "root.tar")
	}
	args := []string{
		"--variant=apt",
		"--mode=" + mode,
		"--aptopt=Acquire::Check-Valid-Until \"false\"",
		"--aptopt=Acquire::Languages \"none\"",
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--include=" + strings.Join(r.Packages, ","),
		"--customize-hook=mkdir -p \"$1" + rootKernelDir + "\" \"$1" + rootSrcDir + "\"",
		r.Suite, target,
	}
	mirrors, err := c.chooser().Choose(ctx, "build root "+r.Name, r.Apt)
	if err != nil {
		return err
	}
	args = append(args, strings.Split(strings.TrimSpace(SourcesList(r.Apt, mirrors)), "\n")...)
	cmd := proc.Command(ctx, "mmdebstrap", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := proc.CombinedOutput(cmd)
	if err != nil {
		return commandError("mmdebstrap "+r.Suite, err, string(out))
	}
	if mode == "unshare" {
		root := filepath.Join(tmp, "root")
		if err := os.MkdirAll(root, 0o755); err != nil {
			return err
		}
		// Device nodes cannot be made without privileges; builds bind
		// mount the host's /dev instead.
		tar := proc.Command(ctx, "tar", "-C", root, "--exclude=./dev/*", "-xf", target)
		if out, err := proc.CombinedOutput(tar); err != nil {
			return commandError("tar -x build root", err, string(out))
		}
		if err := os.Remove(target); err != nil {
			return err
		}
	}
	m := rootManifest{Name: r.Name, Suite: r.Suite, Packages: r.Packages, Mode: mode, Created: time.Now().UTC()}
	if m.Files, err = rootTools(tmp); err != nil {
		return err
	}
	if err := st.Commit(m); err != nil {
		return err
	}
	c.logf("build root %s: done in %.1fs", r.Name, time.Since(start).Seconds())
	return nil
}

// buildPropagation is the mount propagation builds in a root run with:
// private, so no mount leaks out of their namespace, unless this process
// lives in a chroot whose root is not a mount point (a Debian root made
// with mmdebstrap and entered with chroot), where unshare cannot change
// the root's propagation ("cannot change root filesystem propagation:
// Invalid argument"); then the mounts stay as they are and the build
// script unmounts what it mounted.
func buildPropagation() string {
	if rootIsMountPoint("/proc/self/mountinfo") {
		return "private"
	}
	return "unchanged"
}

// rootIsMountPoint reports whether mountinfo lists a mount on "/".
func rootIsMountPoint(mountinfo string) bool {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return true // unshare's default, and its error if it is wrong
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == "/" {
			return true
		}
	}
	return false
}
