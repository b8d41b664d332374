//go:build !linux

package testcmd

import "os/exec"

// setProcessGroup does nothing outside Linux: only the command itself is
// killed on a timeout.
func setProcessGroup(cmd *exec.Cmd) {}
