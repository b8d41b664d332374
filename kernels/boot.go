package kernels

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kmodtest/kmodtest/bootimage"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/cachefs"
)

// BootImage returns the image QEMU should boot for f, and why.
//
// Under TCG a bzImage spends seconds in firmware, real-mode setup and the
// in-guest decompressor (4.3 s before "Linux version" for Debian's
// xz-compressed 6.1; 0.5 s with the ELF). QEMU boots an uncompressed ELF
// vmlinux directly through its PVH entry point, which every Debian
// kernel of the matrix has (CONFIG_PVH). So the vmlinux is extracted once
// into the cache, keyed by the bzImage's hash, and the bzImage is used as
// it is only when extraction is not possible.
//
// arm64 kernels boot as an uncompressed Image (see arm64BootImage).
func (c *Cache) BootImage(ctx context.Context, f *Fetched) (path, why string, err error) {
	if err := c.claim(); err != nil {
		return "", "", err
	}
	if f.Kernel.Arch == arch.ARM64 {
		return c.arm64BootImage(ctx, f)
	}
	_, sum, err := cachefs.FileSHA256(f.Vmlinuz)
	if err != nil {
		return "", "", fmt.Errorf("hash %s: %w", f.Vmlinuz, err)
	}
	start := time.Now()
	var extractErr error
	entry := c.derivedFile(f.Kernel.Name, sum, "vmlinux.elf", "vmlinux of "+f.Kernel.Name,
		func(ctx context.Context, out string) error {
			elfData, err := bootimage.ExtractVmlinux(ctx, f.Vmlinuz)
			if err != nil {
				extractErr = err
				return err
			}
			c.logf("vmlinux %s: extracted %d MB from the bzImage in %.1fs (PVH boot)", f.Kernel.Name, len(elfData)>>20, time.Since(start).Seconds())
			return os.WriteFile(out, elfData, 0o644)
		})
	out, cached, err := entry.Get(ctx)
	if extractErr != nil && ctx.Err() == nil {
		return f.Vmlinuz, "bzImage (" + extractErr.Error() + ")", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("vmlinux for %s: %w", f.Kernel.Name, cachefs.CheckDiskFull(c.Dir, err))
	}
	if cached {
		return out, "uncompressed vmlinux with a PVH entry (cached)", nil
	}
	return out, "uncompressed vmlinux with a PVH entry", nil
}

// derivedFile is the cache entry (under vmlinux/, owned by kernel, so that
// cleaning the kernel removes it) of a file made from one of its package
// files whose sha256 is sum: an extracted vmlinux, a gunzipped Image, an
// uncompressed module.
func (c *Cache) derivedFile(kernel, sum, name, kind string, build func(ctx context.Context, out string) error) *cachefs.FileEntry {
	key := sum[:16]
	return &cachefs.FileEntry{
		Root:  c.Dir,
		Dir:   filepath.Join(c.Dir, "vmlinux", key),
		Name:  name,
		Lock:  filepath.Join(c.Dir, "locks", "vmlinux-"+key+".lock"),
		Owner: kernel,
		Kind:  kind,
		Logf:  c.Logf,
		Build: build,
	}
}

// arm64BootImage returns the Image QEMU boots for an arm64 kernel: the
// vmlinuz itself when it is an uncompressed Image (Debian's 6.1 and 6.12
// are), else the Image inside a gzip-compressed vmlinuz, decompressed once
// into the cache and checked for the Image magic.
func (c *Cache) arm64BootImage(ctx context.Context, f *Fetched) (path, why string, err error) {
	data, err := os.ReadFile(f.Vmlinuz)
	if err != nil {
		return "", "", fmt.Errorf("read %s: %w", f.Vmlinuz, err)
	}
	if bootimage.IsArm64Image(data) {
		return f.Vmlinuz, "uncompressed arm64 Image", nil
	}
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		return "", "", fmt.Errorf("%s is neither an arm64 Image nor gzip-compressed (starts % x)", f.Vmlinuz, data[:min(8, len(data))])
	}
	_, sum, err := cachefs.FileSHA256(f.Vmlinuz)
	if err != nil {
		return "", "", fmt.Errorf("hash %s: %w", f.Vmlinuz, err)
	}
	start := time.Now()
	entry := c.derivedFile(f.Kernel.Name, sum, "Image", "Image of "+f.Kernel.Name,
		func(ctx context.Context, out string) error {
			image, err := bootimage.Arm64Image(data)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Vmlinuz, err)
			}
			c.logf("Image %s: %d MB from the gzip vmlinuz in %.1fs", f.Kernel.Name, len(image)>>20, time.Since(start).Seconds())
			return os.WriteFile(out, image, 0o644)
		})
	out, cached, err := entry.Get(ctx)
	if err != nil {
		return "", "", fmt.Errorf("Image for %s: %w", f.Kernel.Name, cachefs.CheckDiskFull(c.Dir, err))
	}
	if cached {
		return out, "arm64 Image from the gzip vmlinuz (cached)", nil
	}
	return out, "arm64 Image from the gzip vmlinuz", nil
}

// ResultPort returns how f's guest gets its result port (see
// bootimage.ResultPort).
func ResultPort(f *Fetched) (*bootimage.VirtioPort, error) {
	return bootimage.ResultPort(f.Kernel.Name, f.Kernel.Arch, f.KDIR, f.Modules)
}
