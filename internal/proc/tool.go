package proc

import (
	"fmt"
	"os/exec"
	"strings"
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

// NeedTool returns a *MissingToolError naming the Debian package to
// install if tool is not in $PATH.
func NeedTool(tool string) error {
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

// TailLines returns the last n non-empty lines of s.
func TailLines(s string, n int) []string {
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
