package kernels

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/arch"
)

// fakeCCText is the compiler version text of fake kernel entries.
const fakeCCText = "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"

// fakeCompiler puts a compiler named name first on PATH whose --version
// prints text, as Ubuntu's gcc-12 (12.3) would print its own.
func fakeCompiler(t *testing.T, name, text string) {
	t.Helper()
	fakeTool(t, name, "echo '"+text+"'\necho 'Copyright (C) 2022 Free Software Foundation, Inc.'")
}

// TestChooseRootByIdentity: a host compiler of the right name but another
// version (Ubuntu's gcc-12 12.3 for headers built by Debian's 12.2) or a
// missing one sends the build to the suite's build root; only the same
// version text builds on the host.
func TestChooseRootByIdentity(t *testing.T) {
	kdir := t.TempDir()
	os.MkdirAll(filepath.Join(kdir, "include", "config"), 0o755)
	os.WriteFile(filepath.Join(kdir, "include", "config", "auto.conf"), []byte("CONFIG_CC_VERSION_TEXT=\""+fakeCCText+"\"\n"), 0o644)
	os.WriteFile(filepath.Join(kdir, ".kernelvariables"), []byte("override CC = kmodtest-test-gcc-12\n"), 0o644)
	bookworm := &BuildRoot{Name: "bookworm", Suite: "bookworm"}
	k := Kernel{Name: "6.1", Suite: "bookworm", Toolchain: HostToolchain, Root: bookworm}

	t.Run("same", func(t *testing.T) {
		fakeCompiler(t, "kmodtest-test-gcc-12", fakeCCText)
		root, why, err := chooseRoot(t.Context(), k, kdir)
		if err != nil || root != nil || !strings.Contains(why, "is the kernel's own compiler") {
			t.Fatalf("same compiler: got root %v, %q, %v", root, why, err)
		}
	})
	t.Run("other version", func(t *testing.T) {
		fakeCompiler(t, "kmodtest-test-gcc-12", "gcc-12 (Ubuntu 12.3.0-1ubuntu1~22.04) 12.3.0")
		root, why, err := chooseRoot(t.Context(), k, kdir)
		if err != nil || root != bookworm {
			t.Fatalf("other version: got root %v, %q, %v", root, why, err)
		}
		for _, want := range []string{"12.3.0", fakeCCText, "bookworm build root"} {
			if !strings.Contains(why, want) {
				t.Errorf("reason lacks %q: %s", want, why)
			}
		}
	})
	t.Run("missing", func(t *testing.T) {
		root, why, err := chooseRoot(t.Context(), k, kdir)
		if err != nil || root != bookworm || !strings.Contains(why, "has no kmodtest-test-gcc-12") {
			t.Fatalf("missing compiler: got root %v, %q, %v", root, why, err)
		}
	})
	t.Run("no fallback", func(t *testing.T) {
		k := k
		k.Root = nil
		_, _, err := chooseRoot(t.Context(), k, kdir)
		if err == nil || !strings.Contains(err.Error(), `add a build_roots entry named "bookworm"`) {
			t.Fatalf("want an error naming the fix, got %v", err)
		}
	})
}

// TestMatrixHostKernelsHaveFallback: every kernel of the shipped matrix
// that prefers the host has a build root for its suite, so a host with
// another compiler (Ubuntu, Debian 13) can still build it.
func TestMatrixHostKernelsHaveFallback(t *testing.T) {
	m, err := ParseMatrix(embeddedMatrix)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range m {
		if k.Toolchain == HostToolchain && (k.Root == nil || k.Root.Suite != k.Suite || k.Root.Name != fallbackRoot(k)) {
			t.Errorf("kernel %s prefers the host but has no build root for suite %s", k.Name, k.Suite)
		}
	}
}

// TestChooseRootCross: for a kernel of another architecture the host's
// cross compiler counts when it is of the kernel's GCC release (Debian
// built the kernel natively, so no cross compiler has its exact text);
// another release sends the build to the suite's cross root.
func TestChooseRootCross(t *testing.T) {
	if arch.Host() != arch.AMD64 {
		t.Skip("cross builds are checked on an amd64 host")
	}
	kdir := t.TempDir()
	os.WriteFile(filepath.Join(kdir, ".config"), []byte("CONFIG_CC_VERSION_TEXT=\""+fakeCCText+"\"\n"), 0o644)
	os.WriteFile(filepath.Join(kdir, ".kernelvariables"), []byte("CC = $(CROSS_COMPILE)kmodtest-test-gcc-12\n"), 0o644)
	cross := &BuildRoot{Name: "bookworm-arm64", Suite: "bookworm"}
	k := Kernel{Name: "6.1-arm64", Arch: arch.ARM64, Suite: "bookworm", Toolchain: HostToolchain, Root: cross}

	t.Run("same release", func(t *testing.T) {
		fakeCompiler(t, "aarch64-linux-gnu-kmodtest-test-gcc-12", "aarch64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0")
		root, why, err := chooseRoot(t.Context(), k, kdir)
		if err != nil || root != nil || !strings.Contains(why, "cross compiler of the kernel's GCC release") {
			t.Fatalf("same release: got root %v, %q, %v", root, why, err)
		}
	})
	t.Run("other release", func(t *testing.T) {
		fakeCompiler(t, "aarch64-linux-gnu-kmodtest-test-gcc-12", "aarch64-linux-gnu-gcc-12 (Ubuntu 12.3.0-17ubuntu1) 12.3.0")
		root, why, err := chooseRoot(t.Context(), k, kdir)
		if err != nil || root != cross {
			t.Fatalf("other release: got root %v, %q, %v", root, why, err)
		}
	})
	t.Run("native compiler does not count", func(t *testing.T) {
		fakeCompiler(t, "kmodtest-test-gcc-12", fakeCCText)
		root, _, err := chooseRoot(t.Context(), k, kdir)
		if err != nil || root != cross {
			t.Fatalf("a native gcc of the same text was taken for the cross compiler: root %v, %v", root, err)
		}
	})
}

// TestSourceCachedWithoutCompiler: on a host without the source kernel's
// compiler (Debian 13 has no gcc-12) the kernel is simply not cached, so
// a run skips it with a note instead of failing every kernel.
func TestSourceCachedWithoutCompiler(t *testing.T) {
	m, err := ParseMatrix(embeddedMatrix)
	if err != nil {
		t.Fatal(err)
	}
	var src *Kernel
	for i := range m {
		if m[i].Source != nil {
			src = &m[i]
		}
	}
	if src == nil {
		t.Skip("the matrix has no source kernel")
	}
	t.Setenv("PATH", t.TempDir())
	c := &Cache{Dir: t.TempDir()}
	ok, err := c.SourceCached(t.Context(), *src)
	if ok || err != nil {
		t.Fatalf("without %s: got cached=%v, %v; want false, nil", hostCC, ok, err)
	}
}
