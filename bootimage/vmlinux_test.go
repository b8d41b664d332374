package bootimage

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestExtractVmlinuxRejectsNonBzImage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ExtractVmlinux(t.Context(), p); err == nil || !strings.Contains(err.Error(), "not a bzImage") {
		t.Fatalf("ExtractVmlinux(zeros) = %v, want a 'not a bzImage' error", err)
	}
}

func TestDecompressUnknown(t *testing.T) {
	if _, err := decompress(t.Context(), []byte{1, 2, 3, 4, 5, 6}); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("decompress(junk) = %v, want 'not supported'", err)
	}
}

// fakeVmlinux returns a minimal ELF file whose one PT_NOTE segment holds
// a Xen note of type noteType (18 is the PVH entry point).
func fakeVmlinux(noteType uint32) []byte {
	var note bytes.Buffer
	binary.Write(&note, binary.LittleEndian, []uint32{4, 4, noteType})
	note.WriteString("Xen\x00\x00\x00\x00\x00")
	var b bytes.Buffer
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	le(uint16(2))  // e_type: EXEC
	le(uint16(62)) // e_machine: x86-64
	le(uint32(1))
	le(uint64(0))  // e_entry
	le(uint64(64)) // e_phoff
	le(uint64(0))  // e_shoff
	le(uint32(0))
	le([]uint16{64, 56, 1, 64, 0, 0})
	// The program header: PT_NOTE at offset 120.
	le([]uint32{4, 4})
	le([]uint64{120, 0, 0, uint64(note.Len()), uint64(note.Len()), 4})
	b.Write(note.Bytes())
	return b.Bytes()
}

// fakeBzImage wraps payload in the setup header of boot protocol 2.15
// with one setup sector, as Documentation/arch/x86/boot.rst lays it out.
func fakeBzImage(t *testing.T, payload []byte) string {
	t.Helper()
	d := make([]byte, 1024, 1024+len(payload))
	d[0x1f1] = 1
	copy(d[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(d[0x206:], 0x20f)
	binary.LittleEndian.PutUint32(d[0x248:], 0)
	binary.LittleEndian.PutUint32(d[0x24c:], uint32(len(payload)))
	d = append(d, payload...)
	p := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(p, d, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExtractVmlinux extracts the vmlinux from synthetic bzImages with a
// gzip and a zstd payload (the latter ending with its size, as the
// kernel's Makefile writes it), and refuses one without a PVH note.
func TestExtractVmlinux(t *testing.T) {
	elfData := fakeVmlinux(18)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(elfData)
	zw.Close()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	zst := binary.LittleEndian.AppendUint32(enc.EncodeAll(elfData, nil), uint32(len(elfData)))
	for name, payload := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zst} {
		got, err := ExtractVmlinux(t.Context(), fakeBzImage(t, payload))
		if err != nil || !bytes.Equal(got, elfData) {
			t.Errorf("%s payload: got %d bytes, %v; want the %d-byte vmlinux", name, len(got), err, len(elfData))
		}
	}
	var noPVH bytes.Buffer
	zw = gzip.NewWriter(&noPVH)
	zw.Write(fakeVmlinux(1))
	zw.Close()
	if _, err := ExtractVmlinux(t.Context(), fakeBzImage(t, noPVH.Bytes())); !errors.Is(err, ErrNoPVH) {
		t.Errorf("a vmlinux without the PVH note: got %v, want ErrNoPVH", err)
	}
}
