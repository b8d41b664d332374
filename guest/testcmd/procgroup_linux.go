package testcmd

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts cmd in a process group of its own and makes a
// cancel kill the whole group: a test's children die with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
