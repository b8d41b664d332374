package harness

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/kernels"
)

func TestChooseCPU(t *testing.T) {
	for _, bin := range []string{"qemu-system-x86_64", "qemu-system-aarch64"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (make setup installs it)", bin)
		}
	}
	amd := Target{Kernel: kernels.Kernel{Name: "6.1"}}
	arm := Target{Kernel: kernels.Kernel{Name: "6.1-arm64", Arch: arch.ARM64}}
	var logged []string
	logf := func(f string, a ...any) { logged = append(logged, f) }

	c, err := ChooseCPU(t.Context(), []Target{amd, arm}, "EPYC-Milan", logf)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Apply(amd).CPU; got != "EPYC-Milan" {
		t.Errorf("amd64 target runs %q, want EPYC-Milan", got)
	}
	if got := c.Apply(arm).CPU; got != "" {
		t.Errorf("arm64 target runs %q, want its own CPU", got)
	}
	if len(logged) != 1 {
		t.Errorf("want one line saying the arm64 target keeps its CPU, got %q", logged)
	}

	if c, err = ChooseCPU(t.Context(), []Target{amd, arm}, "Skylake-Client,-hle", logf); err != nil || c.Apply(amd).CPU != "Skylake-Client,-hle" {
		t.Errorf("a model with feature switches: %v, %+v", err, c)
	}
	if c, err = ChooseCPU(t.Context(), []Target{amd, arm}, "cortex-a72", logf); err != nil || c.Apply(arm).CPU != "cortex-a72" || c.Apply(amd).CPU != "" {
		t.Errorf("an Arm model: %v, %+v", err, c)
	}

	_, err = ChooseCPU(t.Context(), []Target{amd}, "epyc-milan", logf)
	if err == nil || !strings.Contains(err.Error(), "did you mean EPYC-Milan?") || !strings.Contains(err.Error(), "Skylake-Client") {
		t.Errorf("a misspelt model: want an error that lists the models and the near match, got %v", err)
	}
	bad := amd
	bad.Kernel.CPU, bad.CPU = "NoSuchCPU", "NoSuchCPU"
	if _, err = ChooseCPU(t.Context(), []Target{bad}, "", logf); err == nil || !strings.Contains(err.Error(), "kernels/matrix.json names cpu") {
		t.Errorf("a matrix entry's unknown model: got %v", err)
	}
}
