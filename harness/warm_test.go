package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/vm"
)

// TestLoadSnapshot: a cached snapshot is its state, the console of its
// boot (which every restored run is judged with) and the initramfs in its
// own directory.
func TestLoadSnapshot(t *testing.T) {
	dir := t.TempDir()
	tg := Target{Kernel: kernels.Kernel{Name: "6.1"}}
	if _, err := loadSnapshot(tg, vm.Config{}, dir); err == nil {
		t.Fatal("a snapshot without its state loaded")
	}
	for name, data := range map[string]string{"state": "QEVM", "console.log": "Linux version 6.1\r\nRun /init\r\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := loadSnapshot(tg, vm.Config{Initramfs: "/stage/initramfs.cpio"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != filepath.Join(dir, "state") || s.VM.Initramfs != filepath.Join(dir, "initramfs.cpio") || strings.Join(s.Console, "|") != "Linux version 6.1|Run /init" {
		t.Errorf("unexpected snapshot: state %s, initramfs %s, console %q", s.State, s.VM.Initramfs, s.Console)
	}
}

// TestJudgeExpectsLogLines: a step that passed in the guest fails on the
// host when the module did not print the step table's line for it.
func TestJudgeExpectsLogLines(t *testing.T) {
	loaded := contract.ExpectedLogs()[contract.StepInsmod]
	for _, tc := range []struct {
		name string
		kmsg []string
		want string
	}{
		{"the line is there", []string{"other", loaded}, contract.StatusPass},
		{"the line is missing", []string{"NetlinkGreetingsLKM: hello"}, contract.StatusFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := &vm.Output{Events: []contract.Event{
				{Kind: contract.KindBegin, Step: contract.StepInsmod},
				{Kind: contract.KindEnd, Step: contract.StepInsmod, Status: contract.StatusPass, Kmsg: tc.kmsg},
				{Kind: contract.KindDone},
			}}
			rep := Judge(run, []string{contract.StepInsmod})
			s, ok := rep.Step(contract.StepInsmod)
			if !ok || s.Status != tc.want {
				t.Errorf("insmod: %+v, want %s", s, tc.want)
			}
		})
	}
}
