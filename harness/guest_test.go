package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/verdict"
)

// TestGuestConfig: every run of a target gets the same module, the result
// port of its architecture and its kernel's slowdown, whose step timeouts
// the host's silence limit covers.
func TestGuestConfig(t *testing.T) {
	stock := Target{Kernel: kernels.Kernel{Name: "6.1"}}
	arm := Target{Kernel: kernels.Kernel{Name: "6.1-arm64", Arch: "arm64"}}
	debug := Target{Kernel: kernels.Kernel{Name: "6.12-debug", Source: &kernels.SourceBuild{}}}
	for _, tc := range []struct {
		tg       Target
		port     string
		slowdown int
	}{
		{stock, contract.ResultPort, 1},
		{arm, contract.VirtioResultPort, 1},
		{debug, contract.ResultPort, sanitizerSlowdown},
	} {
		cfg := GuestConfig(tc.tg)
		if cfg.ModulePath != ModuleInGuest || cfg.ResultPort != tc.port || cfg.Slowdown != tc.slowdown {
			t.Errorf("%s: module %s, port %s, slowdown %d; want %s, %s, %d", tc.tg.Name(), cfg.ModulePath, cfg.ResultPort, cfg.Slowdown, ModuleInGuest, tc.port, tc.slowdown)
		}
		v := VMConfig(tc.tg, "tcg", 0)
		for _, s := range contract.Steps {
			if s.Progress {
				continue // its progress lines keep the prober from falling silent
			}
			if need := contract.StepTimeout(s.Name, cfg.Slowdown) + contract.StepGrace; v.StepTimeout <= need {
				t.Errorf("%s: silence limit %s is not above step %s's timeout and grace %s", tc.tg.Name(), v.StepTimeout, s.Name, need)
			}
		}
	}
}

// TestFailureTextArtifacts: the failure text names the files the run
// directory holds, and no others (a restored run has no initramfs.cpio,
// a watch run no rerun.sh).
func TestFailureTextArtifacts(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"console.log", "results.log", "qemu-stderr.log", "qemu-cmdline.txt", "m.ko"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := FailureText(verdict.Step{Name: contract.StepReply, Reasons: []string{"no reply"}}, Boot{Dir: dir}, nil)
	want := "artifacts: " + dir + " (console.log, m.ko, qemu-cmdline.txt, qemu-stderr.log, results.log)\n"
	if !strings.Contains(text, want) {
		t.Errorf("failure text lacks %q:\n%s", want, text)
	}
	for _, absent := range []string{"initramfs.cpio", "rerun.sh"} {
		if strings.Contains(text, absent) {
			t.Errorf("failure text names %s, which the run does not have:\n%s", absent, text)
		}
	}
	if text := FailureText(verdict.Step{Name: contract.StepReply}, Boot{Dir: filepath.Join(dir, "gone")}, nil); !strings.Contains(text, "artifacts: "+filepath.Join(dir, "gone")+"\n") {
		t.Errorf("a missing directory: want its path alone, got:\n%s", text)
	}
}
