package bootimage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/arch"
)

func TestIsArm64Image(t *testing.T) {
	img := make([]byte, 0x40)
	copy(img[0x38:], arm64Magic)
	if !IsArm64Image(img) {
		t.Error("an Image header was not recognised")
	}
	if IsArm64Image(make([]byte, 0x40)) || IsArm64Image([]byte("ARM")) {
		t.Error("zeros or a short file taken for an arm64 Image")
	}
}

// fakeArm64 returns headers of an arm64 kernel that hold config.
func fakeArm64(t *testing.T, config string) string {
	t.Helper()
	kdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(kdir, ".config"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return kdir
}

func TestResultPort(t *testing.T) {
	if p, err := ResultPort("6.1", arch.AMD64, t.TempDir(), ""); p != nil || err != nil {
		t.Errorf("amd64: want no virtio port, got %+v, %v", p, err)
	}

	builtin := fakeArm64(t, "CONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_MMIO=m\nCONFIG_VIRTIO_CONSOLE=y\n")
	p, err := ResultPort("x-arm64", arch.ARM64, builtin, "")
	if err != nil || p.MMIO || len(p.Modules) != 0 {
		t.Errorf("virtio-pci and console built in: want pci without modules, got %+v, %v", p, err)
	}

	noConsole := fakeArm64(t, "CONFIG_VIRTIO_PCI=y\n# CONFIG_VIRTIO_CONSOLE is not set\n")
	if _, err := ResultPort("x-arm64", arch.ARM64, noConsole, ""); err == nil || !strings.Contains(err.Error(), "has no CONFIG_VIRTIO_CONSOLE") {
		t.Errorf("no virtio console: want an error naming CONFIG_VIRTIO_CONSOLE, got %v", err)
	}

	noModules := fakeArm64(t, "CONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_MMIO=m\nCONFIG_VIRTIO_CONSOLE=m\n")
	if _, err := ResultPort("x-arm64", arch.ARM64, noModules, ""); err == nil || !strings.Contains(err.Error(), "carry no modules") {
		t.Errorf("drivers as modules, none shipped: want a 'carry no modules' error, got %v", err)
	}
}

func TestReadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".config")
	data := "# comment\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D=\"text\"\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got["CONFIG_A"] != "y" || got["CONFIG_B"] != "m" || got["CONFIG_D"] != `"text"` {
		t.Errorf("unexpected config: %v", got)
	}
	if _, ok := got["CONFIG_C"]; ok {
		t.Errorf("an unset symbol was read as set: %v", got)
	}
}
