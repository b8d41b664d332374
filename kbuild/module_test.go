package kbuild

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBuildErrorFormat(t *testing.T) {
	out := `make: Entering directory '/k'
  CC [M]  /src/hello.o
/src/hello.c: In function 'hello_init':
/src/hello.c:9:9: error: 'x' undeclared (first use in this function)
    9 |         x = 1;
      |         ^
/src/hello.c:12:1: warning: no return statement in function returning non-void [-Wreturn-type]
make[2]: *** [scripts/Makefile.build:250: /src/hello.o] Error 1
make: Leaving directory '/k'
`
	be := &BuildError{Kernel: "6.1", Cmd: "make -C /k M=/src W=1 modules", Output: compilerLines(out)}
	want := `build module for kernel 6.1 failed: make -C /k M=/src W=1 modules
  /src/hello.c: In function 'hello_init':
  /src/hello.c:9:9: error: 'x' undeclared (first use in this function)
      9 |         x = 1;
        |         ^
  /src/hello.c:12:1: warning: no return statement in function returning non-void [-Wreturn-type]
  make[2]: *** [scripts/Makefile.build:250: /src/hello.o] Error 1`
	if be.Error() != want {
		t.Fatalf("unexpected error text:\n- want\n%s\n- got\n%s", want, be.Error())
	}
	if got := WarningLines(out); len(got) != 1 || !strings.Contains(got[0], "Wreturn-type") {
		t.Fatalf("unexpected warnings %q", got)
	}
	if got := compilerLines("something odd\nhappened\n"); len(got) != 2 {
		t.Fatalf("fallback to tail: got %q", got)
	}
}

func TestKernelCC(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".kernelvariables"), []byte("override ARCH = x86\nCC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-16\noverride CROSS_COMPILE = x86_64-linux-gnu-\n"), 0o644)
	if got := kernelCC(dir); got != "x86_64-linux-gnu-gcc-16" {
		t.Fatalf("kernelCC = %q", got)
	}
	if got := kernelCC(t.TempDir()); got != "gcc" {
		t.Fatalf("kernelCC without variables = %q", got)
	}
}

// TestMergeWarnings: an incremental build prints the warnings of what it
// compiled; the earlier ones of the other sources stay, modpost's are
// always fresh.
func TestMergeWarnings(t *testing.T) {
	prev := []string{
		"a.c:1:2: warning: unused variable 'x'",
		"b.c:3:4: warning: old warning of b",
		"WARNING: modpost: old modpost line",
	}
	out := "  CC [M]  b.o\nb.c:9:1: warning: new warning of b\n  MODPOST Module.symvers\n"
	got := mergeWarnings(prev, WarningLines(out), rebuilt(nil, out))
	want := []string{"b.c:9:1: warning: new warning of b", "a.c:1:2: warning: unused variable 'x'"}
	if !slices.Equal(got, want) {
		t.Errorf("make's rebuild of b.c: got %q, want %q", got, want)
	}
	// A replay prints no CC lines: it compiled exactly the changed files.
	got = mergeWarnings(prev, nil, rebuilt([]string{"a.c"}, ""))
	want = []string{"b.c:3:4: warning: old warning of b"}
	if !slices.Equal(got, want) {
		t.Errorf("replay of a.c: got %q, want %q", got, want)
	}
}
