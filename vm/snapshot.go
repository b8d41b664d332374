package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kmodtest/kmodtest/contract"
)

// Snapshots. A guest whose prober waits for its job (contract.Config.JobPort)
// is booted once and saved with QMP migrate; every run then starts a new
// QEMU from that state with -incoming, sends the module and the steps on
// the guest's job port (amd64's third UART, ttyS2; on arm64 a second
// virtio console, hvc1) and collects the results as Boot does.
// A new QEMU per run means a new kernel every run: nothing a previous
// module did carries over.

// Save boots cfg until the prober reports that it waits for its job,
// then writes the guest's state to statePath. The boot's console and
// result port land in cfg.Dir; cfg.Timeout bounds the boot.
func Save(ctx context.Context, cfg Config, statePath string) error {
	m, _, err := cfg.qemuMachine()
	if err != nil {
		return err
	}
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
	// The job port exists but is not connected: the restored machine
	// must be the saved one, but for its ports' backends.
	extra := append([]string{"-chardev", "null,id=job"}, m.jobPort("job")...)
	p, err := startQEMU(ctx, cfg, launch{extra: append(extra,
		"-qmp", "unix:"+qmpPath+",server=on,wait=off")})
	if err != nil {
		return err
	}
	defer p.kill()

	if err := waitReady(ctx, p, cfg.resultsPath()); err != nil {
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
	p       *qemuProcess
	sockDir string
	qmpPath string
	conn    chan net.Conn
	cancel  context.CancelFunc
	jobConn net.Conn
}

// Restore starts a new QEMU for cfg from the state Save wrote. The guest
// resumes waiting for its job: call Send, then Wait; or Kill to drop it.
// cfg must be the Config that was saved, but for Dir; its Timeout and
// StepTimeout count from Send.
func Restore(ctx context.Context, cfg Config, statePath string) (*Guest, error) {
	m, _, err := cfg.qemuMachine()
	if err != nil {
		return nil, err
	}
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
	g := &Guest{sockDir: sockDir, qmpPath: g0qmp, conn: make(chan net.Conn, 1)}
	ctx, g.cancel = context.WithCancel(ctx)
	extra := append([]string{"-chardev", "socket,id=job,path=" + jobPath}, m.jobPort("job")...)
	g.p, err = startQEMU(ctx, cfg, launch{files: []*os.File{state}, extra: append(extra,
		"-qmp", "unix:"+g0qmp+",server=on,wait=off",
		"-incoming", "fd:3")})
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

// Send hands the waiting prober its job (the steps) and the module, once
// the restored guest runs.
func (g *Guest) Send(ctx context.Context, job contract.Job, module []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
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
	go func() { errc <- contract.WriteJob(g.jobConn, job, module) }()
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
// last step) and returns what it printed, collected and judged for hangs
// as Boot does; the Config's Timeout counts from here.
func (g *Guest) Wait(ctx context.Context) (*Output, error) {
	defer g.Kill()
	return g.p.wait(ctx, g.p.cfg.Timeout)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
