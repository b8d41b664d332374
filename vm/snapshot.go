package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kmodtest/kmodtest/contract"
	"github.com/kmodtest/kmodtest/internal/proc"
)

// Snapshots. A guest whose prober waits for its job (contract.Config.JobPort)
// is booted once and saved with QMP migrate; every run then starts a new
// QEMU from that state with -incoming, sends the module and the steps on
// the guest's third UART (ttyS2) and collects the results as Boot does.
// A new QEMU per run means a new kernel every run: nothing a previous
// module did carries over.

// A qemuProcess is a started QEMU whose console (ttyS0 on stdout) goes to
// a file and through the alarm, as in Boot.
type qemuProcess struct {
	cmd     *exec.Cmd
	done    <-chan error
	exited  chan struct{}
	err     error
	console *os.File
	stderr  tailBuffer
	cmdline string
}

// startQEMU starts QEMU for cfg with extra arguments (serial ports and
// the like) and files (fd 3 on).
func startQEMU(ctx context.Context, cfg Config, w *watcher, files []*os.File, extra ...string) (*qemuProcess, error) {
	m, bin, err := cfg.amd64Machine()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create VM output dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "results.log"), nil, 0o644); err != nil {
		return nil, fmt.Errorf("create result port file: %w", err)
	}
	args, err := qemuCmdline(bin, m, cfg, extra...)
	if err != nil {
		return nil, err
	}
	p := &qemuProcess{cmdline: quoteCmdline(args), exited: make(chan struct{})}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "qemu-cmdline.txt"), []byte(p.cmdline+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("write QEMU command line: %w", err)
	}
	if p.console, err = os.Create(filepath.Join(cfg.Dir, "console.log")); err != nil {
		return nil, fmt.Errorf("create console log: %w", err)
	}
	lines := &lineWriter{fn: func(line string) {
		if cfg.Alarm != nil && cfg.Alarm(line) {
			w.alarm()
		}
	}}
	p.cmd = exec.CommandContext(ctx, args[0], args[1:]...)
	proc.Tie(p.cmd)
	p.cmd.Stdout = io.MultiWriter(p.console, lines)
	p.cmd.Stderr = &p.stderr
	p.cmd.ExtraFiles = files
	if p.done, err = proc.Start(p.cmd); err != nil {
		p.console.Close()
		return nil, fmt.Errorf("start QEMU: %w", err)
	}
	go func() {
		p.err = <-p.done
		if p.err != nil && len(p.stderr.lines()) > 0 {
			p.err = fmt.Errorf("%w: %s", p.err, strings.Join(p.stderr.lines(), " | "))
		}
		p.console.Close()
		close(p.exited)
	}()
	return p, nil
}

// kill ends QEMU (its whole process group) and waits for it.
func (p *qemuProcess) kill() {
	if p.cmd.Process != nil {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Cancel()
		}
	}
	<-p.exited
}

// Save boots cfg until the prober reports that it waits for its job,
// then writes the guest's state to statePath. The boot's console and
// result port land in cfg.Dir; cfg.Timeout bounds the boot.
func Save(ctx context.Context, cfg Config, statePath string) error {
	sockDir, err := shortTempDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(sockDir)
	qmpPath := filepath.Join(sockDir, "qmp.sock")
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	resultsPath := filepath.Join(cfg.Dir, "results.log")
	p, err := startQEMU(ctx, cfg, &watcher{}, nil,
		"-serial", "file:"+resultsPath,
		"-serial", "null",
		"-qmp", "unix:"+qmpPath+",server=on,wait=off")
	if err != nil {
		return err
	}
	defer p.kill()

	if err := waitReady(ctx, p, resultsPath); err != nil {
		return fmt.Errorf("%w\nconsole tail:\n  %s", err, strings.Join(fileTail(filepath.Join(cfg.Dir, "console.log"), 15), "\n  "))
	}
	q, err := dialQMP(ctx, qmpPath)
	if err != nil {
		return err
	}
	defer q.Close()
	if err := q.migrateTo(ctx, "cat > "+shellQuote(statePath)); err != nil {
		return fmt.Errorf("save guest state: %w", err)
	}
	_, _ = q.execute(ctx, "quit", nil)
	select {
	case <-p.exited:
	case <-ctx.Done():
		return fmt.Errorf("QEMU did not quit after saving: %w", ctx.Err())
	}
	return nil
}

// waitReady waits for the prober's ready event on the result port.
func waitReady(ctx context.Context, p *qemuProcess, resultsPath string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("guest not ready to be saved: %w", ctx.Err())
		case <-p.exited:
			return fmt.Errorf("guest not ready to be saved: QEMU exited (%v)", p.err)
		case <-tick.C:
		}
		events, _, err := readEvents(resultsPath)
		if err != nil {
			return err
		}
		for _, e := range events {
			if e.Kind == contract.KindReady {
				return nil
			}
		}
		if len(events) > 0 {
			return errors.New("guest not ready to be saved: the prober ran steps without waiting for a job (is JobPort set in its config?)")
		}
	}
}

// A Guest is a restored guest waiting for its job.
type Guest struct {
	cfg     Config
	p       *qemuProcess
	w       *watcher
	sockDir string
	qmpPath string
	conn    chan net.Conn
	cancel  context.CancelFunc
	jobConn net.Conn
	start   time.Time
	// FirstEvent is when the prober's first event arrived (zero if none).
	FirstEvent time.Time
}

// Restore starts a new QEMU for cfg from the state Save wrote. The guest
// resumes waiting for its job: call Send, then Wait; or Kill to drop it.
// cfg must be the Config that was saved, but for Dir; its Timeout and
// StepTimeout count from Send.
func Restore(ctx context.Context, cfg Config, statePath string) (*Guest, error) {
	state, err := os.Open(statePath)
	if err != nil {
		return nil, fmt.Errorf("open saved guest: %w", err)
	}
	defer state.Close()
	sockDir, err := shortTempDir()
	if err != nil {
		return nil, err
	}
	jobPath := filepath.Join(sockDir, "job.sock")
	g0qmp := filepath.Join(sockDir, "qmp.sock")
	l, err := net.Listen("unix", jobPath)
	if err != nil {
		os.RemoveAll(sockDir)
		return nil, fmt.Errorf("listen for QEMU's job port: %w", err)
	}
	g := &Guest{cfg: cfg, sockDir: sockDir, qmpPath: g0qmp, conn: make(chan net.Conn, 1), start: time.Now(),
		w: &watcher{path: filepath.Join(cfg.Dir, "results.log"), stepTimeout: cfg.StepTimeout, alarmSilence: cfg.AlarmSilence}}
	ctx, g.cancel = context.WithCancel(ctx)
	g.p, err = startQEMU(ctx, cfg, g.w, []*os.File{state},
		"-serial", "file:"+filepath.Join(cfg.Dir, "results.log"),
		"-chardev", "socket,id=job,path="+jobPath,
		"-serial", "chardev:job",
		"-qmp", "unix:"+g0qmp+",server=on,wait=off",
		"-incoming", "fd:3")
	if err != nil {
		g.cancel()
		l.Close()
		os.RemoveAll(sockDir)
		return nil, err
	}
	go func() {
		// QEMU connects at start; Accept fails once QEMU died first.
		c, err := l.Accept()
		l.Close()
		if err == nil {
			g.conn <- c
		}
	}()
	go func() {
		<-g.p.exited
		l.Close()
	}()
	return g, nil
}

// Cmdline returns the QEMU command line, shell-quoted.
func (g *Guest) Cmdline() string { return g.p.cmdline }

// running waits until QEMU has loaded the saved state and the guest
// runs. Bytes sent to the job port before that are lost: the UART's
// state arrives with the migration stream and replaces what it held.
func (g *Guest) running(ctx context.Context) error {
	q, err := dialQMP(ctx, g.qmpPath)
	if err != nil {
		return err
	}
	defer q.Close()
	for {
		ret, err := q.execute(ctx, "query-status", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(ret, &st); err != nil {
			return fmt.Errorf("decode query-status answer %s: %w", ret, err)
		}
		switch st.Status {
		case "running":
			return nil
		case "inmigrate", "prelaunch", "restore-vm":
		default:
			return fmt.Errorf("restored guest is %s, not running", st.Status)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Send hands the waiting prober its steps and the module, once the
// restored guest runs.
func (g *Guest) Send(steps []string, module []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		select {
		case <-g.p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := g.running(ctx); err != nil {
		return fmt.Errorf("wait for the restored guest: %w (QEMU: %v)", err, g.p.err)
	}
	select {
	case g.jobConn = <-g.conn:
	case <-g.p.exited:
		return fmt.Errorf("QEMU exited before the job was sent: %v", g.p.err)
	case <-time.After(30 * time.Second):
		return errors.New("QEMU did not connect its job port within 30 s")
	}
	// The connection stays open until the guest ends: QEMU drops what
	// the guest has not read yet when the other end hangs up.
	errc := make(chan error, 1)
	go func() { errc <- contract.WriteJob(g.jobConn, steps, module) }()
	select {
	case err := <-errc:
		return err
	case <-g.p.exited:
		return fmt.Errorf("QEMU exited before the job was sent: %v", g.p.err)
	}
}

// Kill ends the guest and removes its sockets.
func (g *Guest) Kill() {
	g.p.kill()
	g.cancel()
	if g.jobConn != nil {
		g.jobConn.Close()
	}
	os.RemoveAll(g.sockDir)
}

// Wait runs the guest to its end (the prober powers it off after the
// last step) and returns what it printed, judged for hangs as Boot does.
func (g *Guest) Wait(ctx context.Context) (*Output, error) {
	defer g.Kill()
	cfg := g.cfg
	resultsPath := filepath.Join(cfg.Dir, "results.log")

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	if cfg.Timeout > 0 {
		t := time.AfterFunc(cfg.Timeout, func() { timedOut.Store(true); cancel() })
		defer t.Stop()
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		g.w.watch(wctx, cancel)
	}()
	go func() {
		defer wg.Done()
		g.FirstEvent = waitNonEmpty(wctx, resultsPath)
	}()
	select {
	case <-g.p.exited:
	case <-wctx.Done():
	}
	g.p.kill()
	cancel()
	wg.Wait()

	run := &Output{Cmdline: g.p.cmdline, Duration: time.Since(g.start), Stderr: g.p.stderr.lines()}
	consoleData, err := os.ReadFile(filepath.Join(cfg.Dir, "console.log"))
	if err != nil {
		return nil, fmt.Errorf("read console log: %w", err)
	}
	run.Console = splitLines(consoleData)
	run.Events, run.BadLines, err = readEvents(resultsPath)
	if err != nil {
		return nil, err
	}
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("run stopped: %w", context.Cause(ctx))
	case g.w.silentFor() != "":
		run.Hung, run.HangReason = true, g.w.silentFor()
	case timedOut.Load():
		run.Hung, run.HangReason = true, fmt.Sprintf("VM still running after %s", cfg.Timeout)
	case g.p.err != nil:
		run.ExitErr = g.p.err
	}
	return run, nil
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

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
