package vmtests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/harness"
	"github.com/kmodtest/kmodtest/initramfs"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/verdict"
)

// fixtureTarget returns the matrix's fixture kernel as a target, for the
// checks of the harness that need a real kernel.
func fixtureTarget(t *testing.T, profile string) harness.Target {
	t.Helper()
	if !env.Options.Fixtures {
		t.Skip("a check of the harness, not of the module: run with -fixtures or KMODTEST_FIXTURES=1 (make test does)")
	}
	if env.Custom != nil {
		t.Skip("runs on the matrix's " + fixtureKernel + " kernel")
	}
	matrix, err := kernels.LoadMatrix()
	if err != nil {
		t.Fatal(err)
	}
	sel, err := kernels.Select(matrix, []string{fixtureKernel})
	if err != nil {
		t.Fatal(err)
	}
	return harness.Target{Kernel: sel[0], Profile: profile}
}

// preparedTarget returns the default-profile fixture target with its
// kernel fetched, the real module built and the base image ready.
func preparedTarget(t *testing.T) (harness.Target, *harness.Prep, *initramfs.Base) {
	t.Helper()
	tg := fixtureTarget(t, "default")
	p := env.Prepare(t.Context(), tg.Kernel, "")
	if err := p.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	base, err := env.BaseImage()
	if err != nil {
		t.Fatal(err)
	}
	return tg, p, base
}

// TestCorruptKernelFailsOnce boots a truncated vmlinux: the failure must
// quote QEMU's own reason and come once, for the boot, not once per step.
func TestCorruptKernelFailsOnce(t *testing.T) {
	tg, p, base := preparedTarget(t)
	image, err := os.ReadFile(p.Image)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "vmlinux-truncated")
	if err := os.WriteFile(corrupt, image[:1<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	b := harness.Boot{Target: tg, Kernel: p.Kernel, Image: corrupt, Ko: p.Module.Ko, Base: base.Path,
		Steps: env.Steps, Dir: filepath.Join(dir, "boot"), Accel: env.Accel}
	res, err := b.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Report.Steps) != 0 {
		t.Errorf("a boot that never started still judged %d steps", len(res.Report.Steps))
	}
	boot := res.Report.Boot
	if boot.Name != verdict.BootStep || !boot.Failed() || len(boot.Reasons) != 1 {
		t.Fatalf("boot verdict %+v, want one failure", boot)
	}
	if !strings.Contains(boot.Reasons[0], "Error while loading elf kernel") {
		t.Errorf("the failure does not quote QEMU: %s", boot.Reasons[0])
	}
	t.Logf("reported as:\n%s", harness.FailureText(boot, b, res.Output))
}
