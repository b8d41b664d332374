package kbuild

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/arch"
)

// TestMakeCommand shows the three commands: kmod/'s, a plain Kbuild
// project's and a dkms.conf MAKE, which runs with bash in the project's
// copy with DKMS's variables and gets KERNELRELEASE, as under DKMS.
func TestMakeCommand(t *testing.T) {
	tg := Target{Name: "6.12-debug", Arch: arch.AMD64, Release: "6.12.1-amd64", MakeVars: []string{"CC=gcc-12"}}
	argv, env := makeCommand(tg, Spec{W1: true}, "/k", "/w")
	if want := []string{"make", "-C", "/k", "M=/w", "W=1", "CC=gcc-12", "modules"}; !slices.Equal(argv, want) || env != nil {
		t.Errorf("kmod: %q %q, want %q", argv, env, want)
	}
	argv, _ = makeCommand(tg, Spec{}, "/k", "/w")
	if want := []string{"make", "-C", "/k", "M=/w", "CC=gcc-12", "modules"}; !slices.Equal(argv, want) {
		t.Errorf("plain project: %q, want %q", argv, want)
	}
	argv, env = makeCommand(tg, Spec{Make: "make -C ${kernel_source_dir} M=${dkms_tree}/p/1/build", Dir: "p/1/build"}, "/k", "/w")
	want := []string{"bash", "-c", "cd '/w/p/1/build' && make KERNELRELEASE=6.12.1-amd64 CC=gcc-12 -C ${kernel_source_dir} M=${dkms_tree}/p/1/build"}
	if !slices.Equal(argv, want) {
		t.Errorf("dkms MAKE:\n- want %q\n- got  %q", want, argv)
	}
	for _, v := range []string{"kernelver=6.12.1-amd64", "kernel_source_dir=/k", "dkms_tree=/w", "arch=x86_64"} {
		if !slices.Contains(env, v) {
			t.Errorf("dkms MAKE environment %q lacks %s", env, v)
		}
	}
	argv, _ = makeCommand(tg, Spec{Make: "makeself ./build.sh"}, "/k", "/w")
	if !strings.HasSuffix(argv[2], "&& makeself ./build.sh") {
		t.Errorf("a command that is not make is run as written: %q", argv[2])
	}
}

func TestFindKos(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.ko", "sub/b.ko", "a.o", "sub/b.mod.c"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	kos, err := findKos(dir)
	if err != nil || len(kos) != 2 || filepath.Base(kos[0]) != "a.ko" || filepath.Base(kos[1]) != "b.ko" {
		t.Errorf("findKos: %q, %v", kos, err)
	}
}
