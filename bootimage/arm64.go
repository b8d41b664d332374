package bootimage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kmodtest/kmodtest/internal/arch"
)

// arm64Magic is the magic number of an arm64 kernel Image, at offset 0x38
// of its header (Documentation/arch/arm64/booting.rst).
const arm64Magic = "ARM\x64"

// IsArm64Image reports whether data starts with an arm64 Image header.
func IsArm64Image(data []byte) bool {
	return len(data) >= 0x40 && string(data[0x38:0x3c]) == arm64Magic
}

// Arm64Image returns the arm64 Image inside a gzip-compressed vmlinuz
// (Debian's 7.x arm64 kernels), checked for the Image magic.
func Arm64Image(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	image, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	if !IsArm64Image(image) {
		return nil, errors.New("gunzipped data is not an arm64 Image")
	}
	return image, nil
}

// A VirtioPort says how an arm64 guest gets its result port, a virtio
// console: over which transport (virtio-mmio, else virtio-pci), and which
// driver modules (host paths, in load order) the guest must load before it
// can open the port.
type VirtioPort struct {
	MMIO    bool
	Modules []string
}

// ResultPort returns how f's guest gets its result port: nil for amd64
// (a second UART, which every Debian kernel has built in); for arm64 a
// virtio console (virt has one UART). The transport is virtio-pci when the
// kernel has it built in (Debian's 6.12 and 7.x), else virtio-mmio, whose
// driver is a single module without dependencies (6.1 has both as
// modules). Driver modules come from the kernel's packages, uncompressed
// (6.1's are; trixie's .ko.xz would need decompressing first). A
// kernel that lacks a driver, or needs a module its packages do not
// carry, is an error that names it.
//
// name is the kernel's name for messages, kdir its headers (for .config)
// and modules its /lib/modules/RELEASE directory, "" if its packages
// carry none.
func ResultPort(name string, a arch.Arch, kdir, modules string) (*VirtioPort, error) {
	if a != arch.ARM64 {
		return nil, nil
	}
	config, err := readConfig(filepath.Join(kdir, ".config"))
	if err != nil {
		return nil, fmt.Errorf("result port of %s: %w", name, err)
	}
	port := &VirtioPort{MMIO: true}
	drivers := []struct{ config, module string }{
		{"CONFIG_VIRTIO_MMIO", "kernel/drivers/virtio/virtio_mmio.ko"},
		{"CONFIG_VIRTIO_CONSOLE", "kernel/drivers/char/virtio_console.ko"},
	}
	if config["CONFIG_VIRTIO_PCI"] == "y" {
		port.MMIO = false
		drivers = drivers[1:]
	}
	loaded := map[string]bool{}
	for _, d := range drivers {
		switch config[d.config] {
		case "y":
			continue
		case "m":
		default:
			return nil, fmt.Errorf("kernel %s has no %s: its guest has no result port", name, d.config)
		}
		if modules == "" {
			return nil, fmt.Errorf("kernel %s builds %s as a module, but its packages carry no modules", name, d.config)
		}
		ko := filepath.Join(modules, d.module)
		if _, err := os.Stat(ko); err != nil {
			return nil, fmt.Errorf("result port driver of %s: %w (kmodtest loads uncompressed driver modules only)", name, err)
		}
		deps, err := moduleDepends(ko)
		if err != nil {
			return nil, fmt.Errorf("result port driver %s: %w", ko, err)
		}
		for _, dep := range deps {
			if !loaded[dep] {
				return nil, fmt.Errorf("result port driver %s of %s needs module %s first, which kmodtest does not load", d.module, name, dep)
			}
		}
		loaded[strings.TrimSuffix(filepath.Base(d.module), ".ko")] = true
		port.Modules = append(port.Modules, ko)
	}
	return port, nil
}

// moduleDepends returns the "depends=" names of a module's .modinfo.
func moduleDepends(ko string) ([]string, error) {
	f, err := elf.Open(ko)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, field := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(field, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

// readConfig returns a kernel .config as symbol → value ("y", "m", or a
// quoted string); unset symbols are absent.
func readConfig(path string) (map[string]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	config := map[string]string{}
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.HasPrefix(k, "CONFIG_") {
			config[k] = v
		}
	}
	return config, sc.Err()
}
