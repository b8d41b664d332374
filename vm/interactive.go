package vm

import (
	"context"
	"os"

	"golang.org/x/sys/unix"
)

// An Interactive guest has its console on a terminal: QEMU's stdio is the
// user's tty, in raw mode, with Ctrl-C passed to the guest and Ctrl-A
// reaching QEMU (Ctrl-A x quits, Ctrl-A c the monitor). The result port
// still goes to cfg.Dir/results.log; there is no console.log or
// qemu-stderr.log, the terminal shows both.
type Interactive struct {
	p       *qemuProcess
	Cmdline string
}

// StartInteractive starts cfg with its console on tty; extra holds more
// QEMU arguments (a gdb stub). The caller waits with Wait.
func StartInteractive(ctx context.Context, cfg Config, tty *os.File, extra ...string) (*Interactive, error) {
	if _, _, err := cfg.terminalMachine(); err != nil {
		return nil, err
	}
	cfg.Console = "chardev:con"
	p, err := startQEMU(ctx, cfg, launch{tty: tty, extra: append([]string{
		"-chardev", "stdio,id=con,mux=on,signal=off",
		"-mon", "chardev=con,mode=readline"}, extra...)})
	if err != nil {
		return nil, err
	}
	return &Interactive{p: p, Cmdline: p.cmdline}, nil
}

// Wait waits for QEMU to exit and returns its exit status.
func (in *Interactive) Wait() error {
	<-in.p.exited
	return in.p.waitErr
}

// SaveTerminal returns a function that puts tty back as it is now: QEMU
// restores the terminal when it exits, but not when it is killed.
func SaveTerminal(tty *os.File) func() {
	t, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		return func() {}
	}
	return func() { _ = unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, t) }
}
