package bootimage

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bzImageWithBanner returns the start of a bzImage whose setup header points at
// banner.
func bzImageWithBanner(banner string) []byte {
	d := make([]byte, 0x400)
	copy(d[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(d[0x20e:], 0x100) // string at 0x300
	copy(d[0x300:], banner+"\x00")
	return d
}

func fakeTree(t *testing.T, utsRelease, config string) string {
	t.Helper()
	kdir := t.TempDir()
	for name, data := range map[string]string{
		"include/generated/utsrelease.h": `#define UTS_RELEASE "` + utsRelease + `"` + "\n",
		"include/config/kernel.release":  "6.1.192\n",
		".config":                        config,
	} {
		p := filepath.Join(kdir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return kdir
}

func TestReadImage(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"bzImage": bzImageWithBanner("6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2"),
		"vmlinux": []byte("\x7fELF\x02\x01\x01junk Linux version %s\x00more Linux version 6.13.0-rc1 (me@host) #2 SMP\x00tail"),
		"passwd":  []byte("root:x:0:0:root:/root:/bin/bash\n"),
		"elf":     []byte("\x7fELF\x02\x01\x01 an ELF that is no kernel"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]Image{
		"bzImage": {Kind: "bzImage", Release: "6.1.0-56-amd64"},
		"vmlinux": {Kind: "ELF vmlinux", Release: "6.13.0-rc1"},
	} {
		img, err := ReadImage(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("ReadImage(%s): %v", name, err)
		}
		if img.Kind != want.Kind || img.Release != want.Release {
			t.Errorf("ReadImage(%s) = %s %s, want %s %s", name, img.Kind, img.Release, want.Kind, want.Release)
		}
	}
	if _, err := ReadImage(filepath.Join(dir, "passwd")); !errors.Is(err, ErrNotKernel) || !strings.Contains(err.Error(), "HdrS") {
		t.Errorf("ReadImage(passwd) = %v, want ErrNotKernel naming what it looked for", err)
	}
	if _, err := ReadImage(filepath.Join(dir, "elf")); err == nil || !strings.Contains(err.Error(), "not a vmlinux") {
		t.Errorf("ReadImage(elf) = %v, want an error saying it is not a vmlinux", err)
	}
}

func TestCheckTree(t *testing.T) {
	image := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(image, bzImageWithBanner("6.1.0-56-amd64 (x) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckTree(image, fakeTree(t, "6.1.0-56-amd64", "#\nCONFIG_SMP=y\nCONFIG_PREEMPT_BUILD=y\n")); err != nil {
		t.Errorf("matching tree rejected: %v", err)
	}
	if _, err := CheckTree(image, fakeTree(t, "6.12.9-amd64", "#\nCONFIG_SMP=y\nCONFIG_PREEMPT_BUILD=y\n")); err == nil || !strings.Contains(err.Error(), "builds modules for kernel 6.12.9-amd64, but -kernel") {
		t.Errorf("tree of another release: got %v", err)
	}
	if _, err := CheckTree(image, fakeTree(t, "6.1.0-56-amd64", "#\n# CONFIG_SMP is not set\nCONFIG_PREEMPT_BUILD=y\n")); err == nil || !strings.Contains(err.Error(), "differ in SMP") {
		t.Errorf("tree without SMP: got %v", err)
	}
	if _, err := CheckTree(image, fakeTree(t, "6.1.0-56-amd64", "#\nCONFIG_SMP=y\nCONFIG_PREEMPT_VOLUNTARY=y\n")); err == nil || !strings.Contains(err.Error(), "differ in preempt") {
		t.Errorf("tree without preemption: got %v", err)
	}
}
