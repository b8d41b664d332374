package vm

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// The one run path. Every QEMU of a run, booted (Boot), saved (Save),
// restored (Restore) or on the user's terminal (StartInteractive), is
// started by startQEMU, and every run that is judged ends in
// qemuProcess.wait, which collects and classifies it. A run directory
// (Config.Dir) then holds:
//
//	qemu-cmdline.txt  the command line, shell-quoted
//	results.log       the result port
//	console.log       the console (not for a run on a terminal)
//	qemu-stderr.log   QEMU's own complaints (not for a run on a terminal)

// A launch is what one kind of run adds to cfg's QEMU.
type launch struct {
	// extra are QEMU arguments after the result port: the job port,
	// QMP, -incoming, a gdb stub.
	extra []string
	// files are passed to QEMU as fd 3 on (a saved state).
	files []*os.File
	// tty, when set, is QEMU's stdin, stdout and stderr (kmodtest
	// shell): no console.log or qemu-stderr.log is written, and QEMU
	// stays in our process group, since only the terminal's foreground
	// group may read from it.
	tty *os.File
}

// A qemuProcess is one started QEMU.
type qemuProcess struct {
	cfg     Config
	cmd     *exec.Cmd
	cmdline string
	start   time.Time
	// w follows the result port while the run is waited for (wait).
	w *watcher
	// exited is closed once QEMU exited and its files are closed; then
	// waitErr is its exit status, and err the same with QEMU's last
	// stderr lines.
	exited  chan struct{}
	waitErr error
	err     error
	stderr  tailBuffer
}

// qemuMachine returns cfg's machine and the QEMU binary that runs it.
func (cfg Config) qemuMachine() (machine, string, error) {
	m, ok := machines[cfg.Arch.OrDefault()]
	if !ok {
		return machine{}, "", fmt.Errorf("unknown guest architecture %q (want %s or %s)", cfg.Arch, arch.AMD64, arch.ARM64)
	}
	bin := cfg.QEMU
	if bin == "" {
		bin = m.qemu
	}
	if _, err := exec.LookPath(bin); err != nil {
		return machine{}, "", fmt.Errorf("%w: %s is not on PATH (install it with `make setup`, or apt-get install %s): %v", ErrNoQEMU, bin, qemuPackage(bin), err)
	}
	return m, bin, nil
}

// resultsPath is where the result port's bytes land.
func (cfg Config) resultsPath() string { return filepath.Join(cfg.Dir, "results.log") }

// startQEMU starts QEMU for cfg with the result port, its console going
// to console.log (and through cfg.Alarm) and its stderr to
// qemu-stderr.log, unless l puts it on a terminal.
func startQEMU(ctx context.Context, cfg Config, l launch) (*qemuProcess, error) {
	m, bin, err := cfg.qemuMachine()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create VM output dir: %w", err)
	}
	// QEMU appends to an existing file; start from nothing.
	if err := os.WriteFile(cfg.resultsPath(), nil, 0o644); err != nil {
		return nil, fmt.Errorf("create result port file: %w", err)
	}
	args, err := qemuCmdline(bin, m, cfg, append(m.port(cfg.resultsPath(), cfg.VirtioTransport), l.extra...)...)
	if err != nil {
		return nil, err
	}
	p := &qemuProcess{cfg: cfg, cmdline: quoteCmdline(args), exited: make(chan struct{}),
		w: &watcher{path: cfg.resultsPath(), stepTimeout: cfg.StepTimeout, alarmSilence: cfg.AlarmSilence, grace: powerOffGrace}}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "qemu-cmdline.txt"), []byte(p.cmdline+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("write QEMU command line: %w", err)
	}
	p.cmd = exec.CommandContext(ctx, args[0], args[1:]...)
	p.cmd.ExtraFiles = l.files
	var logs []*os.File
	if l.tty != nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = l.tty, l.tty, l.tty
	} else {
		proc.Tie(p.cmd)
		console, err := os.Create(filepath.Join(cfg.Dir, "console.log"))
		if err != nil {
			return nil, fmt.Errorf("create console log: %w", err)
		}
		stderr, err := os.Create(filepath.Join(cfg.Dir, "qemu-stderr.log"))
		if err != nil {
			console.Close()
			return nil, fmt.Errorf("create QEMU stderr log: %w", err)
		}
		logs = []*os.File{console, stderr}
		lines := &lineWriter{fn: func(line string) {
			if cfg.Alarm != nil && cfg.Alarm(line) {
				p.w.alarm()
			}
		}}
		p.cmd.Stdout = io.MultiWriter(console, lines)
		p.cmd.Stderr = io.MultiWriter(stderr, &p.stderr)
	}
	p.start = time.Now()
	done, err := proc.Start(p.cmd)
	if err != nil {
		for _, f := range logs {
			f.Close()
		}
		return nil, fmt.Errorf("start QEMU: %w", err)
	}
	go func() {
		p.waitErr = <-done
		p.err = p.waitErr
		if lines := p.stderr.lines(); p.err != nil && len(lines) > 0 {
			p.err = fmt.Errorf("%w: %s", p.err, strings.Join(lines, " | "))
		}
		for _, f := range logs {
			f.Close()
		}
		close(p.exited)
	}()
	return p, nil
}

// kill ends QEMU (its whole process group) and waits for it.
func (p *qemuProcess) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	if p.cmd.Process != nil {
		_ = p.cmd.Cancel()
	}
	<-p.exited
}

// wait runs the guest to its end: until QEMU exits, the prober stays
// silent too long (the watcher), timeout passes (counted from now) or
// ctx ends. Then QEMU is killed if it still runs, and the run collected
// and classified.
func (p *qemuProcess) wait(ctx context.Context, timeout time.Duration) (*Output, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() { timedOut.Store(true); cancel() })
		defer t.Stop()
	}
	var firstEvent time.Time
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.w.watch(wctx, cancel)
	}()
	go func() {
		defer wg.Done()
		firstEvent = waitNonEmpty(wctx, p.cfg.resultsPath())
	}()
	select {
	case <-p.exited:
	case <-wctx.Done():
	}
	p.kill()
	cancel()
	wg.Wait()

	run, err := p.collect()
	if err != nil {
		return nil, err
	}
	run.FirstEvent = firstEvent
	if err := classify(ctx, run, p.w, timedOut.Load(), timeout, p.err); err != nil {
		return nil, err
	}
	return run, nil
}

// collect reads what an ended QEMU left in its run directory.
func (p *qemuProcess) collect() (*Output, error) {
	run := &Output{Cmdline: p.cmdline, Duration: time.Since(p.start), Stderr: p.stderr.lines()}
	consoleData, err := os.ReadFile(filepath.Join(p.cfg.Dir, "console.log"))
	if err != nil {
		return nil, fmt.Errorf("read console log: %w", err)
	}
	run.Console = splitLines(consoleData)
	run.Events, run.BadLines, err = readEvents(p.cfg.resultsPath())
	if err != nil {
		return nil, err
	}
	return run, nil
}

// classify says how a run ended: stopped by the caller (an error),
// stopped by the watcher after the prober was done (a clean end), hung
// (silent too long, or past timeout), or QEMU's unclean exit (exitErr).
func classify(ctx context.Context, run *Output, w *watcher, timedOut bool, timeout time.Duration, exitErr error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("run stopped: %w", context.Cause(ctx))
	case w.stoppedAfterDone():
		// The prober had finished; the guest halted instead of powering
		// off (a kernel without ACPI power-off) and was stopped.
	case w.silentFor() != "":
		run.Hung, run.HangReason = true, w.silentFor()
	case timedOut:
		run.Hung, run.HangReason = true, fmt.Sprintf("VM still running after %s", timeout)
	case exitErr != nil:
		run.ExitErr = exitErr
	}
	return nil
}

// waitNonEmpty returns when path first holds data, or the zero time when
// ctx ends first.
func waitNonEmpty(ctx context.Context, path string) time.Time {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			return time.Now()
		}
		select {
		case <-ctx.Done():
			return time.Time{}
		case <-tick.C:
		}
	}
}

// fileTail returns the last n lines of a file.
func fileTail(path string, n int) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	lines := splitLines(data)
	return lines[max(0, len(lines)-n):]
}

// lineWriter calls fn with every complete line written to it.
type lineWriter struct {
	buf []byte
	fn  func(line string)
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.fn(strings.TrimRight(string(l.buf[:i]), "\r"))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 64<<10 {
		l.fn(string(l.buf))
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

// maxStderrLines is how many of QEMU's last stderr lines a Run keeps.
const maxStderrLines = 5

// tailBuffer keeps the last lines written to it (the writes of one
// process's stderr, from one goroutine).
type tailBuffer struct {
	data []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.data = append(t.data, p...)
	if len(t.data) > 64<<10 {
		t.data = t.data[len(t.data)-32<<10:]
	}
	return len(p), nil
}

// lines returns the last non-empty lines written.
func (t *tailBuffer) lines() []string {
	var out []string
	for _, l := range splitLines(t.data) {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out[max(0, len(out)-maxStderrLines):]
}

// watcher follows the result port while the VM runs and cancels it when
// the prober goes silent for too long.
type watcher struct {
	path         string
	stepTimeout  time.Duration
	alarmSilence time.Duration

	// grace is how long the guest may take to power off after the
	// prober's done event (powerOffGrace).
	grace time.Duration

	mu      sync.Mutex
	silent  string
	alarmed time.Time
	// done is set when the watcher stopped a guest that did not power
	// off within powerOffGrace of the prober's done event.
	done bool
}

// powerOffGrace is how long a guest may take to power off after the
// prober's done event before it is stopped: a kernel that cannot power
// off (no ACPI power-off) halts and would otherwise run into Timeout.
const powerOffGrace = 10 * time.Second

// doneEvent marks the prober's last event on the result port.
var doneEvent = []byte(`"kind":"` + contract.KindDone + `"`)

func (w *watcher) stoppedAfterDone() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done
}

// alarm notes that the console showed trouble. A report printed before
// the prober's first event belongs to the boot (the verdict judges it
// apart): it must not shorten the wait for the module's steps.
func (w *watcher) alarm() {
	if w.path != "" {
		if fi, err := os.Stat(w.path); err != nil || fi.Size() == 0 {
			return
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.alarmed.IsZero() {
		w.alarmed = time.Now()
	}
}

// limit returns how long the prober may stay silent, and since when.
func (w *watcher) limit(lastChange time.Time) (time.Duration, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.alarmed.IsZero() || w.alarmSilence <= 0 || w.alarmSilence >= w.stepTimeout {
		return w.stepTimeout, lastChange
	}
	if w.alarmed.After(lastChange) {
		return w.alarmSilence, w.alarmed
	}
	return w.alarmSilence, lastChange
}

func (w *watcher) silentFor() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.silent
}

// watch follows the result port until ctx is done, and calls cancel
// when the prober has been silent for too long.
func (w *watcher) watch(ctx context.Context, cancel context.CancelFunc) {
	if w.stepTimeout <= 0 {
		return
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastSize := int64(-1)
	lastChange := time.Now()
	var doneAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if fi, err := os.Stat(w.path); err == nil && fi.Size() != lastSize {
			lastSize, lastChange = fi.Size(), time.Now()
			if data, err := os.ReadFile(w.path); err == nil && doneAt.IsZero() && bytes.Contains(data, doneEvent) {
				doneAt = lastChange
			}
			continue
		}
		if !doneAt.IsZero() && time.Since(doneAt) > w.grace {
			w.mu.Lock()
			w.done = true
			w.mu.Unlock()
			cancel()
			return
		}
		limit, since := w.limit(lastChange)
		if time.Since(since) > limit {
			w.mu.Lock()
			w.silent = fmt.Sprintf("no word from the prober for %s", limit)
			if !w.alarmed.IsZero() {
				w.silent += " after the kernel reported an error"
			}
			w.mu.Unlock()
			cancel()
			return
		}
	}
}

func readEvents(path string) ([]contract.Event, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read result port: %w", err)
	}
	defer f.Close()
	var events []contract.Event
	var bad []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for s.Scan() {
		e, ok, err := contract.ParseLine(s.Bytes())
		switch {
		case !ok:
		case err != nil:
			bad = append(bad, s.Text())
		default:
			events = append(events, e)
		}
	}
	if err := s.Err(); err != nil {
		return nil, nil, fmt.Errorf("read result port: %w", err)
	}
	return events, bad, nil
}

func splitLines(data []byte) []string {
	data = bytes.ReplaceAll(data, []byte("\r"), nil)
	lines := strings.Split(string(data), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	return lines
}
