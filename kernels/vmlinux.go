package kernels

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/cachefs"
	"github.com/kmodtest/kmodtest/internal/proc"
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
			elfData, err := ExtractVmlinux(ctx, f.Vmlinuz)
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
		return "", "", fmt.Errorf("vmlinux for %s: %w", f.Kernel.Name, checkDiskFull(c.Dir, err))
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

// ErrNoPVH is returned for a kernel whose vmlinux has no PVH entry note:
// QEMU cannot boot it as an ELF.
var ErrNoPVH = errors.New("vmlinux has no PVH entry note (CONFIG_PVH off)")

// ExtractVmlinux returns the ELF vmlinux inside an x86 bzImage, checking
// that QEMU can boot it through PVH.
func ExtractVmlinux(ctx context.Context, bzImage string) ([]byte, error) {
	d, err := os.ReadFile(bzImage)
	if err != nil {
		return nil, err
	}
	// The setup header (Documentation/arch/x86/boot.rst): "HdrS" at
	// 0x202, protocol 2.08+ for payload_offset/length at 0x248/0x24c.
	if len(d) < 0x250 || string(d[0x202:0x206]) != "HdrS" || binary.LittleEndian.Uint16(d[0x206:]) < 0x208 {
		return nil, errors.New("not a bzImage with boot protocol 2.08 or later")
	}
	setupSects := int(d[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(d[0x248:]))
	end := start + int(binary.LittleEndian.Uint32(d[0x24c:]))
	if start >= end || end > len(d) {
		return nil, errors.New("bzImage payload out of bounds")
	}
	payload := d[start:end]

	out, err := decompress(ctx, payload)
	if err != nil {
		return nil, err
	}
	if err := checkPVH(out); err != nil {
		return nil, err
	}
	return out, nil
}

// decompress undoes the kernel's payload compression. xz and zstd
// payloads end with the uncompressed size (the Makefile's *_with_size).
func decompress(ctx context.Context, p []byte) ([]byte, error) {
	var r io.Reader
	withSize := true
	switch {
	case bytes.HasPrefix(p, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		// The kernel's xz streams use the x86 BCJ filter, which no pure
		// Go decoder handles; xz-utils does.
		cmd := proc.Command(ctx, "xz", "-dc")
		cmd.Stdin = bytes.NewReader(p[:len(p)-4])
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := proc.Output(cmd)
		if err != nil {
			return nil, fmt.Errorf("xz -dc on the payload (apt-get install xz-utils): %w: %s", err, stderr.String())
		}
		r = bytes.NewReader(out)
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(bytes.NewReader(p[:len(p)-4]), zstd.WithDecoderMaxWindow(1<<31))
		if err != nil {
			return nil, fmt.Errorf("zstd payload: %w", err)
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		gr, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("gzip payload: %w", err)
		}
		r, withSize = gr, false
	default:
		return nil, fmt.Errorf("payload compression % x not supported (xz, zstd, gzip are)", p[:min(4, len(p))])
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompress payload: %w", err)
	}
	if withSize {
		if want := binary.LittleEndian.Uint32(p[len(p)-4:]); uint32(len(out)) != want {
			return nil, fmt.Errorf("decompressed %d bytes, the payload says %d", len(out), want)
		}
	}
	return out, nil
}

// checkPVH looks for the Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY (18),
// QEMU's condition for booting an uncompressed kernel.
func checkPVH(vmlinux []byte) error {
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		return fmt.Errorf("payload is not an ELF vmlinux: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("read ELF notes: %w", err)
		}
		for len(notes) >= 12 {
			namesz := int(binary.LittleEndian.Uint32(notes[0:]))
			descsz := int(binary.LittleEndian.Uint32(notes[4:]))
			typ := binary.LittleEndian.Uint32(notes[8:])
			name := notes[12:min(len(notes), 12+namesz)]
			if typ == 18 && bytes.HasPrefix(name, []byte("Xen")) {
				return nil
			}
			next := 12 + (namesz+3)&^3 + (descsz+3)&^3
			if next > len(notes) {
				break
			}
			notes = notes[next:]
		}
	}
	return ErrNoPVH
}
