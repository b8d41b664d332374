package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/bootimage"
	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/initramfs"
	"github.com/kmodtest/kmodtest/kernels"
	"github.com/kmodtest/kmodtest/verdict"
	"github.com/kmodtest/kmodtest/vm"
)

// Warm runs: instead of booting, a run restores a snapshot of the target
// booted once with its prober waiting for a job, and hands the prober the
// module and the steps (see vm.Save). Each run is a new QEMU started from
// the same saved state, so no run sees what an earlier module did.
//
// Snapshots are cache entries (kernels.Cache.SnapshotEntry), one per
// target, keyed by the QEMU version, the accelerator and, under KVM, the
// host CPU, the machine options, the kernel image and the initramfs: any
// change there makes a new one.

// A Snapshot is a target's saved, waiting guest.
type Snapshot struct {
	Target Target
	// VM is the machine that was saved (Dir aside).
	VM vm.Config
	// State is the saved guest; Console what its boot printed, which
	// every run's console is judged with (reports at boot count).
	State   string
	Console []string
	// Saved is how long it took to make the snapshot (0 when cached).
	Saved time.Duration
}

// PrepareSnapshot returns the snapshot of tg booted from image with the
// base initramfs, making it if the cache does not hold it (a cache entry
// like any other: see kernels.Cache.SnapshotEntry). port is how an
// arm64 guest gets its result port (kernels.ResultPort), nil for amd64.
func PrepareSnapshot(ctx context.Context, cache *kernels.Cache, tg Target, image string, port *bootimage.VirtioPort, base string, accel vm.Accel, logf func(string, ...any)) (*Snapshot, error) {
	// The initramfs is composed first, since its content is part of the
	// key; the entry keeps a copy, which every restore names again.
	tmp, err := os.MkdirTemp("", "kmodtest-snapshot-*")
	if err != nil {
		return nil, fmt.Errorf("compose snapshot initramfs: %w", err)
	}
	defer os.RemoveAll(tmp)
	cfg := GuestConfig(tg)
	cfg.JobPort = vm.JobPort(tg.Kernel.Arch)
	files, portModules, transport := portFiles(port)
	cfg.PortModules = portModules
	initrd := filepath.Join(tmp, kernels.SnapshotInitramfs)
	if err := initramfs.Compose(initrd, base, cfg, files); err != nil {
		return nil, fmt.Errorf("compose snapshot initramfs: %w", err)
	}
	v := VMConfig(tg, accel, 0)
	v.Kernel, v.Initramfs, v.VirtioTransport = image, initrd, transport
	key, err := snapshotKey(ctx, v)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	entry := cache.SnapshotEntry(tg.Kernel.Name, tg.Name(), key, func(ctx context.Context, state string) error {
		logf("snapshot %s: booting once to save a guest waiting for its module…", tg.Name())
		return saveGuest(ctx, tg, v, state, logf)
	})
	state, cached, err := entry.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", tg.Name(), err)
	}
	s, err := loadSnapshot(tg, v, filepath.Dir(state))
	if err != nil {
		return nil, err
	}
	if !cached {
		s.Saved = time.Since(start)
		var size int64
		if fi, err := os.Stat(s.State); err == nil {
			size = fi.Size()
		}
		logf("snapshot %s: saved in %.1fs (%d MB, %s)", tg.Name(), s.Saved.Seconds(), size>>20, filepath.Dir(state))
	}
	return s, nil
}

// saveGuest boots v with its initramfs copied beside state and saves the
// guest waiting for its job into state; the boot's console lands there
// too. Every run inherits the boot's console: a boot that printed a
// kernel report (a soft lockup of a guest starved by a busy host, say)
// would fail every run's boot verdict. Such a boot is done again once; a
// kernel that reports at every boot keeps its report, as go test would
// show it.
func saveGuest(ctx context.Context, tg Target, v vm.Config, state string, logf func(string, ...any)) error {
	dir := filepath.Dir(state)
	initrd := filepath.Join(dir, kernels.SnapshotInitramfs)
	if err := copyFile(v.Initramfs, initrd); err != nil {
		return err
	}
	v.Initramfs, v.Dir = initrd, dir
	for attempt := 1; ; attempt++ {
		if err := vm.Save(ctx, v, state); err != nil {
			return err
		}
		console, err := os.ReadFile(filepath.Join(dir, kernels.SnapshotConsole))
		if err != nil {
			return err
		}
		reports := verdict.KernelReports(strings.Split(string(console), "\n"))
		if len(reports) == 0 || attempt == 2 {
			return nil
		}
		logf("snapshot %s: the kernel reported an error while booting (%s): booting again", tg.Name(), strings.TrimSpace(reports[0]))
	}
}

// loadSnapshot returns the snapshot in dir. A restore names the same
// initramfs file the boot did (after the rename that made it final).
func loadSnapshot(tg Target, v vm.Config, dir string) (*Snapshot, error) {
	state := filepath.Join(dir, kernels.SnapshotState)
	if _, err := os.Stat(state); err != nil {
		return nil, err
	}
	console, err := os.ReadFile(filepath.Join(dir, kernels.SnapshotConsole))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", dir, err)
	}
	lines := strings.Split(strings.ReplaceAll(string(console), "\r", ""), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	v.Initramfs = filepath.Join(dir, kernels.SnapshotInitramfs)
	return &Snapshot{Target: tg, VM: v, State: state, Console: lines}, nil
}

// snapshotKey hashes what a saved guest depends on: QEMU's version, the
// machine's command line, the kernel image (by name, size and time: it
// is large, and cached images are named by content) and the initramfs
// (by content).
func snapshotKey(ctx context.Context, v vm.Config) (string, error) {
	id, err := vm.MachineID(ctx, v)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", id)
	fi, err := os.Stat(v.Kernel)
	if err != nil {
		return "", fmt.Errorf("kernel image: %w", err)
	}
	abs, _ := filepath.Abs(v.Kernel)
	fmt.Fprintf(h, "kernel %s %d %d\n", abs, fi.Size(), fi.ModTime().UnixNano())
	f, err := os.Open(v.Initramfs)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash initramfs: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// A WarmRun is a restored guest waiting for its module.
type WarmRun struct {
	snap  *Snapshot
	guest *vm.Guest
	dir   string
	// Wait is the time from handing over the module to the prober's
	// first event (the rest of the restore, if the build was quicker,
	// and the transfer); StepsDuration from there to the guest's end.
	// Set by Finish.
	Wait, StepsDuration time.Duration
}

// Start restores s into a new QEMU whose artifacts go to dir. silence,
// when set, replaces the default bound on the prober's silence.
func (s *Snapshot) Start(ctx context.Context, dir string, silence time.Duration) (*WarmRun, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clear artifacts dir: %w", err)
	}
	v := s.VM
	v.Dir = dir
	if silence > 0 {
		v.StepTimeout = silence
	}
	g, err := vm.Restore(ctx, v, s.State)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", s.Target.Name(), err)
	}
	return &WarmRun{snap: s, guest: g, dir: dir}, nil
}

// Discard ends the guest unused (the module did not build).
func (r *WarmRun) Discard() { r.guest.Kill() }

// Finish hands the guest ko and the job (its steps), waits for the end
// and judges the run exactly as Boot.Run does. The .ko is copied into
// the artifacts.
func (r *WarmRun) Finish(ctx context.Context, ko string, job contract.Job) (*Result, error) {
	if err := copyFile(ko, filepath.Join(r.dir, filepath.Base(ko))); err != nil {
		r.guest.Kill()
		return nil, err
	}
	module, err := loadableModule(ko)
	if err != nil {
		r.guest.Kill()
		return nil, err
	}
	sendStart := time.Now()
	if err := r.guest.Send(ctx, job, module); err != nil {
		r.guest.Kill()
		return nil, fmt.Errorf("%s: %w", r.snap.Target.Name(), err)
	}
	run, err := r.guest.Wait(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.snap.Target.Name(), err)
	}
	if first := run.FirstEvent; !first.IsZero() {
		r.Wait, r.StepsDuration = first.Sub(sendStart), time.Since(first)
	}
	// The boot happened once, before the snapshot: judge it with this run.
	run.Console = append(append([]string(nil), r.snap.Console...), run.Console...)
	return &Result{Output: run, Boot: time.Since(sendStart), Report: Judge(run, job.Steps)}, nil
}

// loadableModule returns the module without its debug sections: the
// kernel never loads those (they are not SHF_ALLOC), and amd64's job
// port (a UART) moves about 14 kB/s under TCG, so a 500 kB .ko would take
// half a minute where the stripped one takes a fraction of a second. Without
// objcopy (or for an ELF it does not know) the whole file goes.
func loadableModule(ko string) ([]byte, error) {
	tmp, err := os.CreateTemp("", "kmodtest-stripped-*.ko")
	if err != nil {
		return nil, fmt.Errorf("strip module: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := exec.Command("objcopy", "--strip-debug", ko, tmp.Name()).Run(); err == nil {
		if data, err := os.ReadFile(tmp.Name()); err == nil {
			return data, nil
		}
	}
	data, err := os.ReadFile(ko)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	return data, nil
}

// alarm reports console lines that are kernel error reports.
func alarm(line string) bool { return len(verdict.KernelReports([]string{line})) > 0 }

// Judge gives the verdict on one run of steps: the same for a boot and a
// restored snapshot, for go test and for kmodtest.
func Judge(run *vm.Output, steps []string) *verdict.Report {
	exit := ""
	if run.ExitErr != nil {
		exit = run.ExitErr.Error()
	}
	return verdict.Judge(verdict.Input{
		Events:     run.Events,
		Console:    run.Console,
		Hung:       run.Hung,
		HangReason: run.HangReason,
		Exit:       exit,
	}, steps, contract.ExpectedLogs())
}
