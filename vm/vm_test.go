package vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/internal/arch"
)

func TestReadEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.log")
	data := "garbage before the prober\r\n" +
		`KMODTEST {"kind":"begin","step":"insmod"}` + "\r\n" +
		`KMODTEST {"kind":"end","step":"insmod","status":"pass"}` + "\r\n" +
		`KMODTEST {"kind":"begin","st` // cut short by a panic
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	events, bad, err := readEvents(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[1].Status != "pass" {
		t.Errorf("unexpected events: %+v", events)
	}
	if len(bad) != 1 {
		t.Errorf("want the cut-short line reported as bad, got %q", bad)
	}
}

// TestWatcherLimit checks that a kernel report shortens the wait for a
// silent prober, counted from the report, and never lengthens it.
func TestWatcherLimit(t *testing.T) {
	w := &watcher{stepTimeout: 90 * time.Second, alarmSilence: 30 * time.Second}
	last := time.Now().Add(-time.Minute)
	if d, since := w.limit(last); d != 90*time.Second || !since.Equal(last) {
		t.Errorf("before an alarm: limit %s since %v, want 90s since the last event", d, since)
	}
	w.alarm()
	if d, since := w.limit(last); d != 30*time.Second || !since.After(last) {
		t.Errorf("after an alarm: limit %s since %v, want 30s since the alarm", d, since)
	}
	later := time.Now().Add(time.Second)
	if _, since := w.limit(later); !since.Equal(later) {
		t.Errorf("an event after the alarm must restart the count")
	}
	w = &watcher{stepTimeout: 20 * time.Second, alarmSilence: 30 * time.Second}
	w.alarm()
	if d, _ := w.limit(last); d != 20*time.Second {
		t.Errorf("an alarm lengthened the wait to %s", d)
	}
}

// TestWatcherStopsHaltedGuest: a guest that halts instead of powering
// off after the prober's done event is stopped after the grace period,
// and that is not a hang.
func TestWatcherStopsHaltedGuest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.log")
	line, err := contract.Event{Kind: contract.KindDone}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, line, 0o644); err != nil {
		t.Fatal(err)
	}
	w := &watcher{path: path, stepTimeout: time.Minute, grace: 300 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	w.watch(ctx, cancel)
	if !w.stoppedAfterDone() || w.silentFor() != "" {
		t.Fatalf("want the guest stopped after done (not silent), got done=%v silent=%q", w.stoppedAfterDone(), w.silentFor())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopped after %s, want about the grace period", d)
	}
}

func TestSplitLines(t *testing.T) {
	got := splitLines([]byte("a\r\nb\n\nc\n"))
	want := []string{"a", "b", "", "c"}
	if len(got) != len(want) {
		t.Fatalf("splitLines = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("splitLines = %q, want %q", got, want)
		}
	}
}

// TestBootShowsQEMUReason: when QEMU refuses to start, the run carries
// its own words, not only "exit status 1".
func TestBootShowsQEMUReason(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed (make setup)")
	}
	dir := t.TempDir()
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := os.WriteFile(initrd, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := Boot(t.Context(), Config{Kernel: "/etc/passwd", Initramfs: initrd, Accel: AccelTCG, Timeout: time.Minute, StepTimeout: time.Minute, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if run.ExitErr == nil || !strings.Contains(run.ExitErr.Error(), "linux kernel too old to load a ram disk") {
		t.Errorf("ExitErr = %v, want QEMU's reason", run.ExitErr)
	}
	if len(run.Stderr) == 0 {
		t.Errorf("no stderr lines kept")
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "qemu-stderr.log")); !strings.Contains(string(data), "too old") {
		t.Errorf("qemu-stderr.log = %q", data)
	}
}

func TestTailBuffer(t *testing.T) {
	var b tailBuffer
	for i := range 10 {
		fmt.Fprintf(&b, "line %d\n\n", i)
	}
	if got := strings.Join(b.lines(), ","); got != "line 5,line 6,line 7,line 8,line 9" {
		t.Errorf("lines() = %s", got)
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{fn: func(l string) { got = append(got, l) }}
	w.Write([]byte("a\r\nb"))
	w.Write([]byte("c\nd"))
	if strings.Join(got, ",") != "a,bc" {
		t.Errorf("lines %q, want a, bc", got)
	}
}

func TestMachines(t *testing.T) {
	arm := machines[arch.ARM64]
	if got := strings.Join(arm.port("/r", VirtioMMIO), " "); !strings.Contains(got, "virtio-serial-device") || !strings.Contains(got, "path=/r") {
		t.Errorf("arm64 over mmio: unexpected port args %q", got)
	}
	if got := strings.Join(arm.port("/r", VirtioPCI), " "); !strings.Contains(got, "virtio-serial-pci") {
		t.Errorf("arm64 over pci: unexpected port args %q", got)
	}
	if ResultPort(arch.ARM64) != contract.VirtioResultPort || ResultPort("") != contract.ResultPort {
		t.Errorf("result ports: arm64 %s, default %s", ResultPort(arch.ARM64), ResultPort(""))
	}
	cmd, err := qemuCmdline("qemu-system-aarch64", arm, Config{Kernel: "/k", Initramfs: "/i", Accel: AccelTCG}, arm.port("/r", "")...)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(cmd, " ")
	for _, want := range []string{"-M virt", "-cpu cortex-a57", "console=ttyAMA0", "-serial mon:stdio", "virtconsole,chardev=results"} {
		if !strings.Contains(line, want) {
			t.Errorf("arm64 command line lacks %q: %s", want, line)
		}
	}
	if strings.Contains(line, "edd=off") {
		t.Errorf("arm64 command line has the x86-only edd=off: %s", line)
	}
}

// TestWatcherIgnoresBootAlarm: a kernel report printed before the
// prober's first event is the boot's; it must not shorten the wait for a
// slow step later.
func TestWatcherIgnoresBootAlarm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w := &watcher{path: path, stepTimeout: 90 * time.Second, alarmSilence: 30 * time.Second}
	w.alarm()
	if d, _ := w.limit(time.Now()); d != 90*time.Second {
		t.Errorf("a report at boot shortened the wait to %s", d)
	}
	if err := os.WriteFile(path, []byte(`KMODTEST {"kind":"begin","step":"insmod"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.alarm()
	if d, _ := w.limit(time.Now().Add(-time.Second)); d != 30*time.Second {
		t.Errorf("a report during the steps left the wait at %s, want 30s", d)
	}
}
