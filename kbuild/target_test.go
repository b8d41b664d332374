package kbuild

import (
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/arch"
)

func TestCrossMakeVars(t *testing.T) {
	if arch.Host() != arch.AMD64 {
		t.Skip("the cross-build variables are checked on an amd64 host")
	}
	if v := archMakeVars(arch.AMD64); v != nil {
		t.Errorf("amd64 on amd64: want no cross variables, got %v", v)
	}
	got := strings.Join(archMakeVars(arch.ARM64), " ")
	if got != "ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-" {
		t.Errorf("arm64 on amd64: got %q", got)
	}
}
