package vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/kmodtest/kmodtest/internal/proc"
	"golang.org/x/sys/unix"
)

// An Interactive guest has its console on a terminal: QEMU's stdio is the
// user's tty, in raw mode, with Ctrl-C passed to the guest and Ctrl-A
// reaching QEMU (Ctrl-A x quits, Ctrl-A c the monitor). The result port
// still goes to cfg.Dir/results.log.
type Interactive struct {
	cmd     *exec.Cmd
	done    <-chan error
	Cmdline string
}

// StartInteractive starts cfg with its console on tty; extra holds more
// QEMU arguments (a gdb stub). The caller waits with Wait.
func StartInteractive(ctx context.Context, cfg Config, tty *os.File, extra ...string) (*Interactive, error) {
	m, bin, err := cfg.amd64Machine()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create VM output dir: %w", err)
	}
	resultsPath := filepath.Join(cfg.Dir, "results.log")
	if err := os.WriteFile(resultsPath, nil, 0o644); err != nil {
		return nil, fmt.Errorf("create result port file: %w", err)
	}
	cfg.Console = "chardev:con"
	args := append([]string{"-chardev", "stdio,id=con,mux=on,signal=off", "-mon", "chardev=con,mode=readline"},
		m.port(resultsPath, cfg.VirtioTransport)...)
	args, err = qemuCmdline(bin, m, cfg, append(args, extra...)...)
	if err != nil {
		return nil, err
	}
	in := &Interactive{Cmdline: quoteCmdline(args)}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "qemu-cmdline.txt"), []byte(in.Cmdline+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("write QEMU command line: %w", err)
	}
	in.cmd = exec.CommandContext(ctx, args[0], args[1:]...)
	// QEMU stays in our process group: only the terminal's foreground
	// group may read from it. It still dies with this process.
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in.cmd.Stdin, in.cmd.Stdout, in.cmd.Stderr = tty, tty, tty
	if in.done, err = proc.Start(in.cmd); err != nil {
		return nil, fmt.Errorf("start QEMU: %w", err)
	}
	return in, nil
}

// Wait waits for QEMU to exit.
func (in *Interactive) Wait() error { return <-in.done }

// SaveTerminal returns a function that puts tty back as it is now: QEMU
// restores the terminal when it exits, but not when it is killed.
func SaveTerminal(tty *os.File) func() {
	t, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		return func() {}
	}
	return func() { _ = unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, t) }
}
