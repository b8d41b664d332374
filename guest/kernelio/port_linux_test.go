package kernelio

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPreparePort(t *testing.T) {
	port := filepath.Join(t.TempDir(), "hvc0")
	if err := os.WriteFile(port, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := PreparePort(nil, port); err != nil {
		t.Errorf("a port that opens, no drivers: %v", err)
	}
	err := PreparePort([]string{filepath.Join(t.TempDir(), "virtio_mmio.ko")}, port)
	if err == nil || !strings.Contains(err.Error(), "load result port driver") {
		t.Errorf("a missing driver module: want an error naming the driver, got %v", err)
	}
}
