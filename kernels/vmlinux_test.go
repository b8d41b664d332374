package kernels

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/cachefs"
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

// TestExtractCachedKernels extracts the real Debian kernels of the matrix
// in the cache, when they are there (the VM tests fetch them). Only
// finished x86 entries count: another process may be filling the cache.
func TestExtractCachedKernels(t *testing.T) {
	dir, err := DefaultCacheDir()
	if err != nil {
		t.Skip(err)
	}
	matrix, err := LoadMatrix()
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	for _, k := range matrix {
		entry := filepath.Join(dir, "kernels", kernelKey(k))
		var m kernelManifest
		if k.Arch != arch.AMD64 || cachefs.LoadManifest(entry, &m) != nil {
			continue
		}
		images = append(images, filepath.Join(entry, m.Vmlinuz))
	}
	if len(images) == 0 || testing.Short() {
		t.Skip("no cached kernels (run go test ./vmtests first)")
	}
	for _, img := range images {
		if head, err := readHead(img, 0x40); err == nil && isArm64Image(head) {
			continue // arm64 kernels boot as an Image, not through PVH
		}
		out, err := ExtractVmlinux(t.Context(), img)
		if err != nil {
			t.Errorf("%s: %v", img, err)
			continue
		}
		t.Logf("%s: %d MB vmlinux with a PVH entry", img, len(out)>>20)
	}
}
