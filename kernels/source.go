package kernels

import (
	"context"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/debian"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
	"github.com/kmodtest/kmodtest/kbuild"
)

// configFragments holds the config fragments that source entries of the
// compiled-in matrix name (kernels/*.config).
//
//go:embed *.config
var configFragments embed.FS

// A SourceBuild makes a kernel entry from a Debian kernel source package
// (linux-source-6.12) instead of Debian's binary packages: the harness
// configures it with Config, builds it with the host compiler and uses
// the build tree as KDIR.
type SourceBuild struct {
	// Package is the source package ("linux-source-6.12"), newest version
	// in the entry's apt lines.
	Package string `json:"package"`
	// Config is the config fragment: a file name in kernels/ (for the
	// compiled-in matrix) or relative to $KMODTEST_MATRIX's directory.
	Config string `json:"config"`
}

// fragment returns the content of the config fragment.
func (s *SourceBuild) fragment() ([]byte, error) {
	if m := os.Getenv("KMODTEST_MATRIX"); m != "" {
		path := s.Config
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(m), path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config fragment %s (relative to KMODTEST_MATRIX's directory): %w", s.Config, err)
		}
		return data, nil
	}
	data, err := configFragments.ReadFile(s.Config)
	if err != nil {
		return nil, fmt.Errorf("config fragment %q is not a kernels/*.config file: %w", s.Config, err)
	}
	return data, nil
}

// hostCC is the compiler source kernels are built with. Debian builds
// bookworm's kernels with gcc-12, the host's compiler, so the host builds
// both the kernel and its modules and they always match.
const hostCC = "gcc-12"

// sourceKey is the cache entry name of a source kernel: a hash of its apt
// lines, package, fragment and compiler version.
func sourceKey(ctx context.Context, k Kernel) (string, error) {
	frag, err := k.Source.fragment()
	if err != nil {
		return "", err
	}
	if err := proc.NeedTool(hostCC); err != nil {
		return "", fmt.Errorf("kernel %s is built with %s: %w", k.Name, hostCC, err)
	}
	out, err := proc.Output(proc.Command(ctx, hostCC, "--version"))
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", hostCC, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	def := struct {
		Apt         []string
		Package, CC string
		Fragment    string
	}{k.Apt, k.Source.Package, first, string(frag)}
	return k.Name + "-" + definitionHash(def), nil
}

// SourceCached reports whether k, a source entry, is built and cached, so
// callers can skip it with a hint instead of starting a long build.
func (c *Cache) SourceCached(ctx context.Context, k Kernel) (bool, error) {
	if proc.NeedTool(hostCC) != nil {
		// Not built here, and the key names the compiler's version: a
		// host without it (Debian 13, which has gcc-14) has nothing
		// cached; building it says what is missing.
		return false, nil
	}
	key, err := sourceKey(ctx, k)
	if err != nil {
		return false, err
	}
	_, err = readKernelManifest(filepath.Join(c.Dir, "kernels", key))
	return err == nil, nil
}

// buildSource downloads k's source package, configures and builds it into
// entry. The caller holds the entry's lock.
func (c *Cache) buildSource(ctx context.Context, k Kernel, entry string) (*kernelManifest, error) {
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb", "tar", "make", "nice", "flex", "bison", "bc"} {
		if err := proc.NeedTool(tool); err != nil {
			return nil, err
		}
	}
	frag, err := k.Source.fragment()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	apt, err := c.updateLists(ctx, k, entry)
	if err != nil {
		return nil, err
	}
	infos, err := apt.Show(ctx, k.Source.Package)
	if err != nil {
		return nil, err
	}
	src := debian.Newest(infos)

	st, err := cachefs.Stage(c.Dir, entry)
	if err != nil {
		return nil, err
	}
	defer st.Discard()
	debs := filepath.Join(st.Dir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return nil, err
	}
	c.logf("build %s: downloading %s %s (%d MB)…", k.Name, src.Name, src.Version, src.Size>>20)
	if err := apt.Download(ctx, debs, src.Name+"="+src.Version); err != nil {
		return nil, err
	}
	pkgTree := filepath.Join(debs, "x")
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	if len(files) != 1 {
		return nil, fmt.Errorf("apt-get download %s gave %d files", src.Name, len(files))
	}
	if out, err := proc.CombinedOutput(proc.Command(ctx, "dpkg-deb", "-x", files[0], pkgTree)); err != nil {
		return nil, debian.CommandFailed("dpkg-deb -x "+filepath.Base(files[0]), err, string(out))
	}
	tarballs, _ := filepath.Glob(filepath.Join(pkgTree, "usr", "src", "linux-source-*.tar.*"))
	if len(tarballs) != 1 {
		return nil, fmt.Errorf("%s holds %d usr/src/linux-source-*.tar.* files, want 1", src.Name, len(tarballs))
	}
	tree := filepath.Join(st.Dir, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return nil, err
	}
	c.logf("build %s: unpacking %s", k.Name, filepath.Base(tarballs[0]))
	if out, err := proc.CombinedOutput(proc.Command(ctx, "tar", "-xf", tarballs[0], "-C", tree, "--strip-components=1")); err != nil {
		return nil, debian.CommandFailed("tar -xf "+filepath.Base(tarballs[0]), err, string(out))
	}
	if err := cachefs.RemoveAll(c.Dir, debs); err != nil {
		return nil, err
	}

	if err := kbuild.BuildKernel(ctx, kbuild.KernelBuild{Name: k.Name, Tree: tree, Fragment: frag, FragmentName: k.Source.Config, CC: hostCC}, c.logf); err != nil {
		return nil, cachefs.CheckDiskFull(c.Dir, err)
	}
	rel, err := os.ReadFile(filepath.Join(tree, "include", "config", "kernel.release"))
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", k.Name, err)
	}
	m := &kernelManifest{
		Kernel:   k.Name,
		Release:  strings.TrimSpace(string(rel)),
		Version:  src.Version,
		Packages: []string{src.Name},
		Vmlinuz:  filepath.Join("tree", "arch", "x86", "boot", "bzImage"),
		KDIR:     "tree",
		Created:  time.Now().UTC(),
	}
	m.VmlinuzSize, m.VmlinuzSHA256, err = cachefs.FileSHA256(filepath.Join(st.Dir, m.Vmlinuz))
	if err != nil {
		return nil, err
	}
	if err := st.Commit(m); err != nil {
		return nil, err
	}
	c.logf("build %s: done in %s (%s)", k.Name, time.Since(start).Round(time.Second), m.Release)
	return m, nil
}
