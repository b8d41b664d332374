package vmtests

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/harness"
)

// breakVermagic writes a copy of the module ko whose vermagic says
// mod_unlaod where the kernel says mod_unload, as a module built against
// headers of another configuration would: the kernel refuses it and says
// why ("version magic '…' should be '…'").
func breakVermagic(t *testing.T, ko, out string) {
	t.Helper()
	data, err := os.ReadFile(ko)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("vermagic="))
	if i < 0 {
		t.Fatalf("%s has no vermagic", ko)
	}
	end := i + bytes.IndexByte(data[i:], 0)
	j := bytes.Index(data[i:end], []byte("mod_unload"))
	if j < 0 {
		t.Fatalf("vermagic %q lacks mod_unload", data[i:end])
	}
	copy(data[i+j:], "mod_unlaod")
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFailedInsmodFailsOnce boots a module the kernel refuses: the insmod
// step must fail once, quoting the kernel, and every step that needs the
// module must be skipped, saying why.
func TestFailedInsmodFailsOnce(t *testing.T) {
	tg, p, base := preparedTarget(t)
	dir := t.TempDir()
	ko := filepath.Join(dir, filepath.Base(p.Module.Ko))
	breakVermagic(t, p.Module.Ko, ko)
	b := harness.Boot{Target: tg, Kernel: p.Kernel, Image: p.Image, Ko: ko, Base: base.Path,
		Steps: contract.FullSteps, Dir: filepath.Join(dir, "boot"), Accel: env.Accel}
	res, err := b.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, s := range append(res.Report.Steps, res.Report.Log, res.Report.Boot) {
		switch {
		case s.Failed():
			failed = append(failed, s.Name)
		case s.Name != contract.StepInsmod && contract.NeedsModule(s.Name) && s.Name != res.Report.Log.Name && s.Name != res.Report.Boot.Name:
			if s.Status != contract.StatusSkip || !strings.Contains(strings.Join(s.Reasons, " "), "insmod failed") {
				t.Errorf("step %s: %s %q, want skipped because insmod failed", s.Name, s.Status, s.Reasons)
			}
		}
	}
	if len(failed) != 1 || failed[0] != contract.StepInsmod {
		t.Fatalf("failed steps %v, want insmod alone", failed)
	}
	s, _ := res.Report.Step(contract.StepInsmod)
	if !strings.Contains(s.Reasons[0], "the kernel said: ") || !strings.Contains(s.Reasons[0], "version magic") {
		t.Errorf("the insmod failure does not quote the kernel: %q", s.Reasons)
	}
	t.Logf("reported as:\n%s", harness.FailureText(s, b, res.Output))
}
