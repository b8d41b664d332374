package kbuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/debian"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// Mount points every build root has, made when the root is created so
// that builds never need to write into the root.
const (
	rootKernelDir = "/kmodtest/kernel" // the kernel's extracted packages
	rootSrcDir    = "/kmodtest/src"    // the module source being built
)

// A RootManifest is the manifest of a finished build root.
type RootManifest struct {
	Name     string   `json:"name"`
	Suite    string   `json:"suite"`
	Packages []string `json:"packages"`
	Mode     string   `json:"mode"`
	// Variant is mmdebstrap's: "extract" since roots stopped being
	// installed systems; older roots ("" or "apt") still work.
	Variant string `json:"variant,omitempty"`
	// Files are the root's tools (make, the compilers), checked on use.
	// Roots made before they were recorded have none.
	Files   []cachefs.FileSum `json:"files,omitempty"`
	Created time.Time         `json:"created"`
}

// CheckRoot verifies a finished build root: manifest, mount points and
// make present, and its tools as recorded.
func CheckRoot(dir string) error {
	var m RootManifest
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

// RootVariant is how mmdebstrap makes a build root: it downloads the
// packages with their dependencies and unpacks them, without running
// dpkg's configuration or any maintainer script. A build needs files,
// not an installed system, and unpacking is 2-4 times faster than
// installing (bullseye's root: 4.6 s against 17.7 s on an idle host;
// docs/performance.md).
const RootVariant = "extract"

// rootBaseTools are the packages a Kbuild run needs besides the
// compiler and make. The extract variant installs no Essential package
// of its own, so the shells and text tools Kbuild's scripts call are
// named here.
var rootBaseTools = []string{"bash", "dash", "coreutils", "sed", "grep", "mawk", "diffutils", "findutils"}

// rootHook is the extract hook run on the unpacked root (the extract
// variant runs no customize hook): the mount
// points builds use, and the one alternative Kbuild needs that dpkg's
// configuration would have made (awk).
const rootHook = `mkdir -p "$1` + rootKernelDir + `" "$1` + rootSrcDir + `" && ` +
	`{ [ -e "$1/usr/bin/awk" ] || ln -s mawk "$1/usr/bin/awk"; }`

// A RootSpec says what build root to make: the Debian suite, the
// packages a build needs (compiler, make, libraries; rootBaseTools are
// added) and the sources lines (mirrors already chosen) mmdebstrap
// fetches from.
type RootSpec struct {
	Name, Suite string
	Packages    []string
	Sources     []string
}

// MakeRoot runs mmdebstrap to make the build root spec in dir/root (dir
// is the entry's staging directory) and returns its manifest, for the
// caller to commit. As root it writes the directory directly
// (--mode=root); otherwise it uses --mode=unshare (needs subordinate ids in
// /etc/subuid and /etc/subgid) to a tarball that is unpacked as the user,
// so the user owns, and can later delete, every file.
func MakeRoot(ctx context.Context, dir string, spec RootSpec, logf func(string, ...any)) (*RootManifest, error) {
	if err := proc.NeedTool("mmdebstrap"); err != nil {
		return nil, err
	}
	start := time.Now()
	logf("build root %s: mmdebstrap --variant=%s %s with %s…", spec.Name, RootVariant, spec.Suite, strings.Join(spec.Packages, ","))
	mode := "root"
	target := filepath.Join(dir, "root")
	if os.Geteuid() != 0 {
		mode = "unshare"
		target = filepath.Join(dir, "root.tar")
	}
	args := []string{
		"--variant=" + RootVariant,
		"--mode=" + mode,
		"--aptopt=Acquire::Check-Valid-Until \"false\"",
		"--aptopt=Acquire::Languages \"none\"",
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--include=" + strings.Join(append(slices.Clone(spec.Packages), rootBaseTools...), ","),
		"--extract-hook=" + rootHook,
		spec.Suite, target,
	}
	args = append(args, spec.Sources...)
	cmd := proc.Command(ctx, "mmdebstrap", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := proc.CombinedOutput(cmd)
	if err != nil {
		return nil, debian.CommandFailed("mmdebstrap "+spec.Suite, err, string(out))
	}
	if mode == "unshare" {
		root := filepath.Join(dir, "root")
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, err
		}
		// Device nodes cannot be made without privileges; builds bind
		// mount the host's /dev instead.
		tar := proc.Command(ctx, "tar", "-C", root, "--exclude=./dev/*", "-xf", target)
		if out, err := proc.CombinedOutput(tar); err != nil {
			return nil, debian.CommandFailed("tar -x build root", err, string(out))
		}
		if err := os.Remove(target); err != nil {
			return nil, err
		}
	}
	for _, p := range []string{"usr/bin/make", "usr/bin/awk", "bin/sh", rootKernelDir[1:], rootSrcDir[1:]} {
		if _, err := os.Stat(filepath.Join(dir, "root", p)); err != nil {
			return nil, fmt.Errorf("mmdebstrap %s made a root without /%s: %w", spec.Suite, p, err)
		}
	}
	m := &RootManifest{Name: spec.Name, Suite: spec.Suite, Packages: spec.Packages, Mode: mode, Variant: RootVariant, Created: time.Now().UTC()}
	if m.Files, err = rootTools(dir); err != nil {
		return nil, err
	}
	logf("build root %s: done in %.1fs", spec.Name, time.Since(start).Seconds())
	return m, nil
}

// buildPropagation is the mount propagation builds in a root run with:
// private, so no mount leaks out of their namespace, unless this process
// lives in a chroot whose root is not a mount point (a Debian root made
// with mmdebstrap and entered with chroot), where unshare cannot change
// the root's propagation ("cannot change root filesystem propagation:
// Invalid argument"); then the mounts stay as they are and the build
// script unmounts what it mounted.
func buildPropagation() string {
	if RootIsMountPoint("/proc/self/mountinfo") {
		return "private"
	}
	return "unchanged"
}

// RootIsMountPoint reports whether mountinfo lists a mount on "/".
func RootIsMountPoint(mountinfo string) bool {
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
