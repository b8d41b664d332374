package kbuild

import (
	"os"
	"path/filepath"
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
