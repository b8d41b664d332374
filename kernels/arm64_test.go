package kernels

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
	if !isArm64Image(img) {
		t.Error("an Image header was not recognised")
	}
	if isArm64Image(make([]byte, 0x40)) || isArm64Image([]byte("ARM")) {
		t.Error("zeros or a short file taken for an arm64 Image")
	}
}

// fakeArm64 returns a fetched arm64 kernel whose headers hold config.
func fakeArm64(t *testing.T, config string) *Fetched {
	t.Helper()
	kdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(kdir, ".config"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Fetched{Kernel: Kernel{Name: "x-arm64", Arch: arch.ARM64}, KDIR: kdir}
}

func TestResultPort(t *testing.T) {

	amd := &Fetched{Kernel: Kernel{Name: "6.1", Arch: arch.AMD64}}
	if p, err := ResultPort(amd); p != nil || err != nil {
		t.Errorf("amd64: want no virtio port, got %+v, %v", p, err)
	}

	builtin := fakeArm64(t, "CONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_MMIO=m\nCONFIG_VIRTIO_CONSOLE=y\n")
	p, err := ResultPort(builtin)
	if err != nil || p.MMIO || len(p.Modules) != 0 {
		t.Errorf("virtio-pci and console built in: want pci without modules, got %+v, %v", p, err)
	}

	noConsole := fakeArm64(t, "CONFIG_VIRTIO_PCI=y\n# CONFIG_VIRTIO_CONSOLE is not set\n")
	if _, err := ResultPort(noConsole); err == nil || !strings.Contains(err.Error(), "has no CONFIG_VIRTIO_CONSOLE") {
		t.Errorf("no virtio console: want an error naming CONFIG_VIRTIO_CONSOLE, got %v", err)
	}

	noModules := fakeArm64(t, "CONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_MMIO=m\nCONFIG_VIRTIO_CONSOLE=m\n")
	if _, err := ResultPort(noModules); err == nil || !strings.Contains(err.Error(), "carry no modules") {
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

func TestCrossMakeVars(t *testing.T) {
	if arch.Host() != arch.AMD64 {
		t.Skip("the cross-build variables are checked on an amd64 host")
	}
	if v := archMakeVars(Kernel{Arch: arch.AMD64}); v != nil {
		t.Errorf("amd64 on amd64: want no cross variables, got %v", v)
	}
	got := strings.Join(archMakeVars(Kernel{Arch: arch.ARM64}), " ")
	if got != "ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-" {
		t.Errorf("arm64 on amd64: got %q", got)
	}
}
