package harness

import (
	"strings"
	"testing"
)

// TestNewSessionRejectsNonKernel: -kernel /etc/passwd is refused before
// anything is fetched or built, with what was looked for.
func TestNewSessionRejectsNonKernel(t *testing.T) {
	t.Setenv("KMODTEST_CACHE", t.TempDir())
	_, err := NewSession(t.Context(), Options{Kernel: "/etc/passwd", KDIR: t.TempDir(), Accel: "tcg"}, "..", nil)
	if err == nil || !strings.Contains(err.Error(), "not a kernel image") || !strings.Contains(err.Error(), "HdrS") {
		t.Fatalf("NewSession with -kernel /etc/passwd: %v, want a not-a-kernel error", err)
	}
}

func TestNewSessionRejectsBadOptions(t *testing.T) {
	t.Setenv("KMODTEST_CACHE", t.TempDir())
	for _, o := range []Options{{Steps: "bogus"}, {Accel: "xen"}, {Kernel: "/k"}, {Kernels: "9.9", Accel: "tcg"}} {
		if _, err := NewSession(t.Context(), o, "..", nil); err == nil {
			t.Errorf("NewSession(%+v) accepted", o)
		}
	}
}

func TestCheckKVM(t *testing.T) {
	err := checkKVM("/nonexistent/kvm")
	if err == nil || !strings.Contains(err.Error(), "-accel kvm: open /nonexistent/kvm") || !strings.Contains(err.Error(), "-accel tcg") {
		t.Errorf("checkKVM of a missing device: %v", err)
	}
}
