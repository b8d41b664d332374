package kernels

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// toolPackages names the Debian package that provides each external tool
// kmodtest runs, for "not found" errors.
var toolPackages = map[string]string{
	"apt-get":             "apt",
	"apt-cache":           "apt",
	"apt-config":          "apt",
	"gpgv":                "gpgv",
	"dpkg-deb":            "dpkg",
	"mmdebstrap":          "mmdebstrap",
	"patch":               "patch",
	"pahole":              "dwarves",
	"make":                "make",
	"unshare":             "util-linux",
	"newuidmap":           "uidmap",
	"newgidmap":           "uidmap",
	"qemu-system-x86_64":  "qemu-system-x86",
	"qemu-system-aarch64": "qemu-system-arm",
	"chroot":              "coreutils",
	"mount":               "mount",
	"tar":                 "tar",
	"gcc":                 "gcc",
}

// A MissingToolError reports an external program that is not installed.
type MissingToolError struct {
	Tool    string
	Package string
}

func (e *MissingToolError) Error() string {
	return fmt.Sprintf("%s not found: install the Debian package %s (apt-get install %s), or run the README's setup command `make setup`",
		e.Tool, e.Package, e.Package)
}

// needTool returns a *MissingToolError if tool is not in $PATH.
func needTool(tool string) error {
	if _, err := exec.LookPath(tool); err != nil {
		pkg := toolPackages[tool]
		if pkg == "" {
			pkg = tool
		}
		if strings.HasPrefix(tool, "gcc-") || strings.HasPrefix(tool, "x86_64-linux-gnu-gcc-") {
			pkg = strings.TrimPrefix(tool, "x86_64-linux-gnu-")
		}
		// aarch64-linux-gnu-gcc-12 comes with gcc-12-aarch64-linux-gnu.
		if v, ok := strings.CutPrefix(tool, "aarch64-linux-gnu-gcc-"); ok {
			pkg = "gcc-" + v + "-aarch64-linux-gnu"
		}
		return &MissingToolError{Tool: tool, Package: pkg}
	}
	return nil
}

// A NetworkError reports that apt could not reach the archive.
type NetworkError struct {
	Cmd   string
	Lines []string // apt's error lines
}

func (e *NetworkError) Error() string {
	return fmt.Sprintf("%s: cannot download from the Debian archive:\n  %s\nis the Debian mirror reachable? set KMODTEST_MIRROR (and KMODTEST_SECURITY_MIRROR) to one that is",
		e.Cmd, strings.Join(e.Lines, "\n  "))
}

// A DiskFullError reports ENOSPC in the cache.
type DiskFullError struct {
	Dir  string
	Free uint64 // bytes available to unprivileged users
	Err  error
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("no space left in %s (%d MB free): free some space or point KMODTEST_CACHE elsewhere: %v",
		e.Dir, e.Free>>20, e.Err)
}

func (e *DiskFullError) Unwrap() error { return e.Err }

// checkDiskFull turns an ENOSPC (from Go, or "No space left on device" in
// a command's output) into a *DiskFullError naming dir; other errors pass
// through unchanged.
func checkDiskFull(dir string, err error) error {
	if err == nil {
		return nil
	}
	var dfe *DiskFullError
	if errors.As(err, &dfe) {
		return err
	}
	if !errors.Is(err, syscall.ENOSPC) && !strings.Contains(err.Error(), "No space left on device") {
		return err
	}
	var st unix.Statfs_t
	var free uint64
	if unix.Statfs(dir, &st) == nil {
		free = st.Bavail * uint64(st.Bsize)
	}
	return &DiskFullError{Dir: dir, Free: free, Err: err}
}

// A CommandError is a failed external command with the tail of its output.
type CommandError struct {
	Cmd    string
	Err    error
	Output []string
}

func (e *CommandError) Error() string {
	if len(e.Output) == 0 {
		return fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	}
	return fmt.Sprintf("%s: %v:\n  %s", e.Cmd, e.Err, strings.Join(e.Output, "\n  "))
}

func (e *CommandError) Unwrap() error { return e.Err }

// commandError builds the error for a failed command. apt's network
// failures become a *NetworkError.
func commandError(cmd string, err error, output string) error {
	if bad := failedFetchLines(output); len(bad) > 0 {
		return &NetworkError{Cmd: cmd, Lines: bad}
	}
	return &CommandError{Cmd: cmd, Err: err, Output: tailLines(output, 25)}
}

// tailLines returns the last n non-empty lines of s.
func tailLines(s string, n int) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, " \r"))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
