// Package proc starts child processes that cannot outlive the run that
// started them.
//
// A child made by Command is in a process group of its own, and when its
// context is done the whole group is killed (make and its compilers,
// mmdebstrap and apt, QEMU). If this process dies without cleaning up
// (go test -timeout, SIGKILL), the kernel sends the child SIGKILL
// (PR_SET_PDEATHSIG). That signal fires when the OS thread that started
// the child exits, not the process, so Run, Output and CombinedOutput
// start the child from a goroutine locked to its thread for the child's
// whole life.
package proc

import (
	"context"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// waitDelay bounds the wait for a killed child's output pipes to close.
const waitDelay = 5 * time.Second

// Command is exec.CommandContext with the child tied to the run: see the
// package comment. Run it with Run, Output, CombinedOutput or Start.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	Tie(cmd)
	return cmd
}

// Tie sets up cmd, made by exec.CommandContext, to run in its own process
// group that is killed as a whole on cancel, and to be killed if this
// process dies.
func Tie(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		// The group's id is the child's pid (Setpgid with Pgid 0).
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay
}

// Run runs cmd to its end from a thread that lives as long as the child.
func Run(cmd *exec.Cmd) error {
	return locked(cmd.Run)
}

// Output is cmd.Output from a thread that lives as long as the child.
func Output(cmd *exec.Cmd) ([]byte, error) {
	var out []byte
	err := locked(func() (err error) {
		out, err = cmd.Output()
		return err
	})
	return out, err
}

// CombinedOutput is cmd.CombinedOutput from a thread that lives as long
// as the child.
func CombinedOutput(cmd *exec.Cmd) ([]byte, error) {
	var out []byte
	err := locked(func() (err error) {
		out, err = cmd.CombinedOutput()
		return err
	})
	return out, err
}

// Start starts cmd from a locked thread and returns a channel that
// receives cmd.Wait's result: the thread stays locked until then.
func Start(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}

// locked runs f on a goroutine locked to its OS thread and waits for it.
func locked(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		errc <- f()
	}()
	return <-errc
}

// DieWithParent asks the kernel to send this process sig when the thread
// that started it exits: a test binary whose go command was killed then
// stops too, instead of running on with nobody to report to. It returns
// false when the parent is already gone.
func DieWithParent(sig syscall.Signal) bool {
	ppid := syscall.Getppid()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(sig), 0); errno != 0 {
		return true
	}
	return syscall.Getppid() == ppid
}
