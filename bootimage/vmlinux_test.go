package bootimage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
