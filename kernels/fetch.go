package kernels

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/debian"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/atomicfile"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// release substitutes {release} in a matrix template.
func withRelease(tmpl, release string) string {
	return strings.ReplaceAll(tmpl, "{release}", release)
}

// download fetches k's packages with apt into a temporary directory,
// extracts them, prepares KDIR and commits the finished entry. The caller
// holds the entry's lock.
func (c *Cache) download(ctx context.Context, k Kernel, entry string) (*kernelManifest, error) {
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if err := proc.NeedTool(tool); err != nil {
			return nil, err
		}
	}
	apt, err := c.updateLists(ctx, k, entry)
	if err != nil {
		return nil, err
	}
	pkgs, release, version, err := resolve(ctx, apt, k)
	if err != nil {
		return nil, err
	}

	st, err := cachefs.Stage(c.Dir, entry)
	if err != nil {
		return nil, err
	}
	defer st.Discard()
	tmp := st.Dir
	debs := filepath.Join(tmp, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return nil, err
	}
	var total int64
	var names []string
	for _, p := range pkgs {
		total += p.Size
		names = append(names, p.Name)
	}
	c.logf("fetch %s: downloading %s %s (%d MB)…", k.Name, strings.Join(names, " "), version, total>>20)
	dlStart := time.Now()
	var args []string
	for _, p := range pkgs {
		args = append(args, p.Name+"="+p.Version)
	}
	if err := apt.Download(ctx, debs, args...); err != nil {
		return nil, err
	}
	c.logf("fetch %s: downloaded %d MB in %.1fs", k.Name, total>>20, time.Since(dlStart).Seconds())

	tree := filepath.Join(tmp, "tree")
	files, err := filepath.Glob(filepath.Join(debs, "*.deb"))
	if err != nil {
		return nil, err
	}
	if len(files) != len(pkgs) {
		return nil, fmt.Errorf("apt-get download gave %d files for %d packages", len(files), len(pkgs))
	}
	for _, deb := range files {
		out, err := proc.CombinedOutput(proc.Command(ctx, "dpkg-deb", "-x", deb, tree))
		if err != nil {
			return nil, debian.CommandFailed("dpkg-deb -x "+filepath.Base(deb), err, string(out))
		}
	}
	if err := cachefs.RemoveAll(c.Dir, debs); err != nil {
		return nil, err
	}

	m := &kernelManifest{
		Kernel:   k.Name,
		Release:  release,
		Version:  version,
		Packages: names,
		Vmlinuz:  filepath.Join("tree", withRelease(k.Vmlinuz, release)),
		KDIR:     filepath.Join("tree", "usr", "src", "linux-headers-"+release),
		Created:  time.Now().UTC(),
	}
	if fi, err := os.Stat(filepath.Join(tree, "lib", "modules", release, "kernel")); err == nil && fi.IsDir() {
		m.Modules = filepath.Join("tree", "lib", "modules", release)
	} else if fi, err := os.Stat(filepath.Join(tree, "usr", "lib", "modules", release, "kernel")); err == nil && fi.IsDir() {
		m.Modules = filepath.Join("tree", "usr", "lib", "modules", release)
	}
	m.VmlinuzSize, m.VmlinuzSHA256, err = cachefs.FileSHA256(filepath.Join(tmp, m.Vmlinuz))
	if err != nil {
		return nil, fmt.Errorf("vmlinuz not at %s in %s: %w", withRelease(k.Vmlinuz, release), withRelease(k.Image, release), err)
	}
	if err := relocateHeaders(filepath.Join(tmp, m.KDIR)); err != nil {
		return nil, err
	}
	if err := st.Commit(m); err != nil {
		return nil, err
	}
	if err := c.stampChecked(entry); err != nil {
		return nil, err
	}
	return m, nil
}

// updateLists chooses the mirrors for k's sources, writes the entry's
// private apt configuration and runs apt-get update.
func (c *Cache) updateLists(ctx context.Context, k Kernel, entry string) (debian.Apt, error) {
	mirrors, err := c.chooser().Choose(ctx, "fetch "+k.Name, k.Apt)
	if err != nil {
		return debian.Apt{}, err
	}
	apt := debian.Apt{Dir: filepath.Join(c.Dir, "apt", filepath.Base(entry)), Arch: k.Arch}
	if err := apt.Setup(ctx, debian.SourcesList(k.Apt, mirrors)); err != nil {
		return debian.Apt{}, fmt.Errorf("apt config: %w", err)
	}
	start := time.Now()
	c.logf("fetch %s: apt-get update (%s)", k.Name, k.Suite)
	if err := apt.Update(ctx); err != nil {
		return debian.Apt{}, err
	}
	c.logf("fetch %s: package lists in %.1fs", k.Name, time.Since(start).Seconds())
	return apt, nil
}

// resolveMeta returns the release and Debian version the newest image
// meta package of k's sources points at.
func resolveMeta(ctx context.Context, apt debian.Apt, k Kernel) (release, version string, err error) {
	imeta, err := apt.Show(ctx, k.ImageMeta)
	if err != nil {
		return "", "", err
	}
	meta := debian.Newest(imeta)
	for _, d := range meta.Depends {
		if strings.HasPrefix(d, "linux-image-") {
			return strings.TrimPrefix(d, "linux-image-"), meta.Version, nil
		}
	}
	return "", "", fmt.Errorf("%s %s depends on no linux-image-RELEASE package", k.ImageMeta, meta.Version)
}

// resolve finds the packages of k: the release from the meta packages'
// dependencies (newest version in k's sources), the image, the headers
// and the headers' linux-headers-*/linux-kbuild-* dependencies, all at the
// meta package's version.
func resolve(ctx context.Context, apt debian.Apt, k Kernel) (pkgs []debian.Package, release, version string, err error) {
	release, version, err = resolveMeta(ctx, apt, k)
	if err != nil {
		return nil, "", "", err
	}
	hmeta, err := apt.Show(ctx, k.HeadersMeta)
	if err != nil {
		return nil, "", "", err
	}
	headers := ""
	for _, in := range hmeta {
		if in.Version != version {
			continue
		}
		for _, d := range in.Depends {
			if strings.HasPrefix(d, "linux-headers-") {
				headers = d
			}
		}
	}
	if headers != "linux-headers-"+release {
		return nil, "", "", fmt.Errorf("%s %s names headers %q, want linux-headers-%s", k.HeadersMeta, version, headers, release)
	}
	want := []string{withRelease(k.Image, release), headers}
	hinfo, err := pick(ctx, apt, headers, version)
	if err != nil {
		return nil, "", "", err
	}
	for _, d := range hinfo.Depends {
		switch {
		case strings.HasPrefix(d, "linux-kbuild-") && k.Arch != "" && k.Arch != arch.Host():
			// The kbuild tools (fixdep, modpost) run on this host: take
			// the package of the same version built for it.
			want = append(want, d+":"+string(arch.Host()))
		case strings.HasPrefix(d, "linux-headers-"), strings.HasPrefix(d, "linux-kbuild-"):
			want = append(want, d)
		}
	}
	for _, name := range want {
		p, err := pick(ctx, apt, name, version)
		if err != nil {
			return nil, "", "", err
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, release, version, nil
}

// pick returns the stanza of name at version.
func pick(ctx context.Context, apt debian.Apt, name, version string) (debian.Package, error) {
	infos, err := apt.Show(ctx, name)
	if err != nil {
		return debian.Package{}, err
	}
	for _, in := range infos {
		if in.Version == version {
			in.Name = name
			return in, nil
		}
	}
	var have []string
	for _, in := range infos {
		have = append(have, in.Version)
	}
	return debian.Package{}, fmt.Errorf("package %s has no version %s (have %s)", name, version, strings.Join(have, ", "))
}

// relocateHeaders makes the extracted headers usable where they are.
// Debian's arch headers Makefile names the common headers (and on 7.x
// KBUILD_OUTPUT) by absolute /usr/src paths; they are rewritten relative
// to the Makefile's own location, so the same tree works on the host and
// bind-mounted into a build root. The other links in the packages are
// relative already.
func relocateHeaders(kdir string) error {
	path := filepath.Join(kdir, "Makefile")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("headers Makefile: %w", err)
	}
	text := string(data)
	if !strings.Contains(text, "/usr/src/") {
		return nil
	}
	const self = "kmodtest_usr_src := $(abspath $(dir $(realpath $(lastword $(MAKEFILE_LIST))))..)\n"
	text = self + strings.ReplaceAll(text, "/usr/src/", "$(kmodtest_usr_src)/")
	return atomicfile.WriteFile(path, []byte(text), 0o644)
}
