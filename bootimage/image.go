package bootimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// An Image is what a kernel file says about itself.
type Image struct {
	// Kind is "ELF vmlinux" or "bzImage".
	Kind string
	// Release is the kernel's uname -r, from its version string.
	Release string
	// Banner is the version string ("6.1.0-56-amd64 (…) #1 SMP …").
	Banner string
}

// ErrNotKernel is returned for a file that is neither an ELF vmlinux
// nor a bzImage.
var ErrNotKernel = errors.New("not a kernel image")

// ReadImage identifies the kernel image at path: an x86 bzImage (the
// "HdrS" setup header at 0x202, whose kernel_version field points at the
// version string) or an ELF vmlinux (whose .rodata holds the banner
// "Linux version …").
func ReadImage(path string) (*Image, error) {
	d, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	switch {
	case len(d) >= 0x210 && string(d[0x202:0x206]) == "HdrS":
		// kernel_version (0x20e) is an offset from 0x200.
		off := int(binary.LittleEndian.Uint16(d[0x20e:])) + 0x200
		if off <= 0x200 || off >= len(d) {
			return nil, fmt.Errorf("%s: bzImage without a version string", path)
		}
		banner, _, _ := bytes.Cut(d[off:min(len(d), off+512)], []byte{0})
		return newImage("bzImage", string(banner)), nil
	case bytes.HasPrefix(d, []byte("\x7fELF")):
		const marker = "Linux version "
		for rest := d; ; {
			i := bytes.Index(rest, []byte(marker))
			if i < 0 {
				return nil, fmt.Errorf("%s: ELF file without a \"Linux version\" banner: not a vmlinux", path)
			}
			rest = rest[i+len(marker):]
			if len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9' {
				banner, _, _ := bytes.Cut(rest[:min(len(rest), 512)], []byte{0})
				return newImage("ELF vmlinux", string(banner)), nil
			}
		}
	}
	return nil, fmt.Errorf("%s: %w: no ELF header and no bzImage signature \"HdrS\" at 0x202 (give arch/x86/boot/bzImage or vmlinux of your build)", path, ErrNotKernel)
}

func newImage(kind, banner string) *Image {
	release, _, _ := strings.Cut(banner, " ")
	return &Image{Kind: kind, Release: release, Banner: strings.TrimSpace(banner)}
}

// TreeRelease returns the release modules built in the kernel tree kdir
// get in their vermagic: UTS_RELEASE from include/generated/utsrelease.h
// (Debian's header trees put the upstream version in
// include/config/kernel.release, not the uname -r), else kernel.release.
func TreeRelease(kdir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(kdir, "include", "generated", "utsrelease.h"))
	if err == nil {
		if _, rest, ok := strings.Cut(string(data), "UTS_RELEASE \""); ok {
			if rel, _, ok := strings.Cut(rest, "\""); ok && rel != "" {
				return rel, nil
			}
		}
	}
	data, err = os.ReadFile(filepath.Join(kdir, "include", "config", "kernel.release"))
	if err != nil {
		return "", fmt.Errorf("read the release of %s (is it a built kernel tree?): %w", kdir, err)
	}
	rel := strings.TrimSpace(string(data))
	if rel == "" {
		return "", fmt.Errorf("%s/include/config/kernel.release is empty", kdir)
	}
	return rel, nil
}

// CheckTree checks that modules built in kdir will load into the kernel
// image at path: the image must be a kernel, and its release must be the
// one the tree writes into vermagic, with the same SMP setting.
func CheckTree(path, kdir string) (*Image, error) {
	img, err := ReadImage(path)
	if err != nil {
		return nil, err
	}
	rel, err := TreeRelease(kdir)
	if err != nil {
		return nil, err
	}
	if rel != img.Release {
		return nil, fmt.Errorf("-kdir %s builds modules for kernel %s, but -kernel %s is %s: insmod would refuse them (give the tree the image was built from)", kdir, rel, path, img.Release)
	}
	cfg, err := os.ReadFile(filepath.Join(kdir, ".config"))
	if err != nil {
		return img, nil // a tree without .config: the release is all there is to compare
	}
	// The parts of vermagic the image's banner also shows ("#1 SMP
	// PREEMPT_DYNAMIC"); mod_unload and modversions it does not.
	has := func(opt string) bool { return bytes.Contains(append([]byte("\n"), cfg...), []byte("\n"+opt+"=y\n")) }
	fields := strings.Fields(img.Banner)
	for _, c := range []struct {
		name        string
		tree, image bool
	}{
		{"SMP", has("CONFIG_SMP"), slices.Contains(fields, "SMP")},
		{"preempt", has("CONFIG_PREEMPT_BUILD") || has("CONFIG_PREEMPT") || has("CONFIG_PREEMPT_RT"),
			slices.ContainsFunc(fields, func(f string) bool { return strings.HasPrefix(f, "PREEMPT") })},
	} {
		if c.tree != c.image {
			return nil, fmt.Errorf("-kdir %s and -kernel %s differ in %s (tree: %v, image %q): insmod would refuse the module's vermagic", kdir, path, c.name, c.tree, img.Banner)
		}
	}
	return img, nil
}
