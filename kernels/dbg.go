package kernels

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/debian"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// DebugVmlinux returns the vmlinux with debug symbols of a Debian kernel
// of the matrix, for gdb: Debian ships it in linux-image-RELEASE-dbg (858 MB
// to download for 6.1, 5.6 GB unpacked with every module's debug file).
// Only the vmlinux is kept, in <cache>/dbg/<release>/; it is fetched once,
// and only when asked for (kmodtest shell -gdb -dbg).
func (c *Cache) DebugVmlinux(ctx context.Context, f *Fetched) (string, error) {
	if f.Kernel.Suite == "custom" || f.Tree == "" {
		return "", fmt.Errorf("kernel %s is not one of Debian's: give gdb its vmlinux with -vmlinux", f.Kernel.Name)
	}
	pkg := "linux-image-" + f.Release + "-dbg"
	entry := &cachefs.FileEntry{
		Root:  c.Dir,
		Dir:   filepath.Join(c.Dir, "dbg", f.Release),
		Name:  "vmlinux",
		Lock:  filepath.Join(c.Dir, "locks", "dbg-"+f.Release+".lock"),
		Owner: f.Kernel.Name,
		Kind:  "debug vmlinux of " + f.Kernel.Name,
		Logf:  c.Logf,
		Build: func(ctx context.Context, out string) error {
			return c.fetchDebugVmlinux(ctx, f, pkg, out)
		},
	}
	path, _, err := entry.Get(ctx)
	if err != nil {
		return "", fmt.Errorf("debug symbols of %s (%s): %w", f.Kernel.Name, pkg, err)
	}
	return path, nil
}

// fetchDebugVmlinux downloads pkg and writes its vmlinux to out.
func (c *Cache) fetchDebugVmlinux(ctx context.Context, f *Fetched, pkg, out string) error {
	apt, err := c.updateLists(ctx, f.Kernel, filepath.Dir(f.Tree))
	if err != nil {
		return err
	}
	infos, err := apt.Show(ctx, pkg)
	if err != nil {
		return err
	}
	info := debian.Newest(infos)
	debs := filepath.Join(filepath.Dir(out), "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	defer cachefs.RemoveAll(c.Dir, debs)
	c.logf("dbg %s: downloading %s %s (%d MB)…", f.Kernel.Name, pkg, info.Version, info.Size>>20)
	start := time.Now()
	if err := apt.Download(ctx, debs, pkg+"="+info.Version); err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	if len(files) != 1 {
		return fmt.Errorf("apt-get download %s gave %d files", pkg, len(files))
	}
	c.logf("dbg %s: downloaded in %.1fs; extracting the vmlinux…", f.Kernel.Name, time.Since(start).Seconds())
	x := filepath.Join(debs, "x")
	if err := os.MkdirAll(x, 0o755); err != nil {
		return err
	}
	// Only the vmlinux leaves the archive (usr/lib/debug/boot/vmlinux-REL,
	// or .../lib/modules/REL/vmlinux).
	script := `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards '*/vmlinux*'`
	if o, err := proc.CombinedOutput(proc.Command(ctx, "sh", "-c", script, "sh", files[0], x)); err != nil {
		return debian.CommandFailed("dpkg-deb --fsys-tarfile | tar -x */vmlinux*", err, string(o))
	}
	var best string
	var size int64
	err = filepath.WalkDir(x, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !strings.HasPrefix(d.Name(), "vmlinux") {
			return err
		}
		if fi, err := d.Info(); err == nil && fi.Size() > size {
			best, size = p, fi.Size()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if best == "" {
		return fmt.Errorf("%s holds no vmlinux", pkg)
	}
	c.logf("dbg %s: %s, %d MB, in %.1fs", f.Kernel.Name, strings.TrimPrefix(best, x), size>>20, time.Since(start).Seconds())
	return os.Rename(best, out)
}
