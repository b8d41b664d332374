package bootimage

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

	"github.com/klauspost/compress/zstd"
	"github.com/kmodtest/kmodtest/internal/proc"
)

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
