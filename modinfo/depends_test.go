package modinfo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/testenv"
)

// fakeModule writes an ELF object whose only section is a .modinfo with
// the given depends, as path (objcopy makes it; compressed with xz when
// path ends in .xz).
func fakeModule(t *testing.T, path, depends string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(t.TempDir(), "modinfo")
	if err := os.WriteFile(raw, []byte("license=GPL\x00depends="+depends+"\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	ko := strings.TrimSuffix(path, ".xz")
	out, err := exec.Command("objcopy", "-I", "binary", "-O", "elf64-x86-64", "--rename-section", ".data=.modinfo", raw, ko).CombinedOutput()
	if err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	if strings.HasSuffix(path, ".xz") {
		if out, err := exec.Command("xz", ko).CombinedOutput(); err != nil {
			t.Fatalf("xz: %v\n%s", err, out)
		}
	}
}

// TestResolveDepends: the kernel's modules a project needs, each after
// the ones it needs, compressed ones decompressed, and a module the
// kernel lacks named with who needs it.
func TestResolveDepends(t *testing.T) {
	testenv.NeedTool(t, "objcopy", "xz")
	dir := filepath.Join(t.TempDir(), "lib", "modules", "6.12.0")
	fakeModule(t, filepath.Join(dir, "kernel", "drivers", "media", "mc", "mc.ko.xz"), "")
	fakeModule(t, filepath.Join(dir, "kernel", "drivers", "media", "v4l2-core", "videodev.ko.xz"), "mc")
	fakeModule(t, filepath.Join(dir, "kernel", "drivers", "media", "v4l2-core", "v4l2-async.ko"), "videodev,mc")
	index, err := KernelIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(index) != 3 || index["v4l2_async"] == "" {
		t.Fatalf("index %v", index)
	}
	out := t.TempDir()
	got, err := ResolveDepends(index, []string{"v4l2-async", "videodev"}, out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, filepath.Base(p))
	}
	if strings.Join(names, " ") != "mc.ko videodev.ko v4l2-async.ko" {
		t.Errorf("load order %q", names)
	}
	if filepath.Dir(got[0]) != out {
		t.Errorf("mc.ko.xz decompressed to %s, want into %s", got[0], out)
	}
	if _, err := Read(got[0]); err != nil {
		t.Errorf("the decompressed module does not read: %v", err)
	}
	_, err = ResolveDepends(index, []string{"uvcvideo"}, out)
	if err == nil || !strings.Contains(err.Error(), "the project depends on uvcvideo, which the kernel's package does not have") {
		t.Errorf("missing module: %v", err)
	}
}
