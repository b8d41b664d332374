package vmtests

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/harness"
)

// TestBootReport proves that a kernel report printed while the guest
// boots, before the module under test is loaded, is blamed on the boot,
// once, and on no step: kmod/fixtures/boot/warn-at-boot WARNs as it
// loads, and the guest loads it at boot.
func TestBootReport(t *testing.T) {
	tg, p, _ := preparedTarget(t)
	warn, err := env.Cache.BuildModule(t.Context(), p.Kernel, filepath.Join(env.Repo, "kmod", "fixtures", "boot", "warn-at-boot"), "")
	if err != nil {
		t.Fatalf("build the boot fixture: %v", err)
	}
	out := bootTarget(t, harness.Job{
		Target:      tg,
		Dir:         filepath.Join(env.Artifacts, "fixtures", "warn-at-boot"),
		BootModules: []string{warn.Ko},
		Fixture:     "warn-at-boot",
	})
	if out.Build != nil {
		t.Fatalf("the module does not build: %v", out.Build)
	}
	b := out.Report.Boot
	if !b.Failed() || len(b.Reasons) != 1 || !strings.Contains(b.Reasons[0], "before the module was loaded") {
		t.Fatalf("boot: %s %q; want one failure naming a report before the module was loaded", b.Status, b.Reasons)
	}
	if ev := strings.Join(b.Evidence, "\n"); !strings.Contains(ev, "warn_at_boot") {
		t.Errorf("the boot's evidence does not quote the WARN of warn_at_boot:\n%s", ev)
	}
	t.Logf("caught: boot: %s", b.Reasons[0])
	for _, s := range append(out.Report.Steps, out.Report.Log) {
		if s.Failed() {
			t.Errorf("step %s blamed for the boot's report:\n%s", s.Name, harness.FailureText(s, out.Boot, out.Result.Output))
		}
	}
}
