// Package userpath resolves the relative paths a user types (-kernel
// bzImage, -kdir, KMODTEST_CACHE=.kcache, KMODTEST_MATRIX, an artifacts
// directory) against the directory the user typed them in.
//
// Under `go test` that is not the test binary's working directory: go test
// runs each test binary in its package's directory (vmtests/), and it sets
// $PWD to that directory as well, so neither os.Getwd nor $PWD tells where
// the command was started. The go command itself still runs in the
// user's directory, and it is the test binary's parent. The rule is:
//
//   - an absolute path is used as it is;
//   - a relative path is joined to the working directory of the parent
//     process when that process is the go command (go test, go run),
//     read from /proc/PPID/cwd;
//   - otherwise (a command run directly, a test binary run by hand, no
//     /proc) to the process's own working directory.
package userpath

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Resolve returns p as an absolute path, a relative p being taken relative
// to the directory the user started the command from (see the package
// documentation). "" stays "".
func Resolve(p string) (string, error) {
	if p == "" || filepath.IsAbs(p) {
		return p, nil
	}
	base, err := StartDir()
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", p, err)
	}
	return filepath.Join(base, p), nil
}

// StartDir returns the directory the user started the command from.
func StartDir() (string, error) {
	if dir, ok := goCommandDir(os.Getppid()); ok {
		return dir, nil
	}
	return os.Getwd()
}

// goCommandDir returns the working directory of process pid if it is the
// go command.
func goCommandDir(pid int) (string, bool) {
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	exe, err := os.Readlink(filepath.Join(proc, "exe"))
	if err != nil || !isGoCommand(exe) {
		return "", false
	}
	dir, err := os.Readlink(filepath.Join(proc, "cwd"))
	if err != nil || !filepath.IsAbs(dir) {
		return "", false
	}
	return dir, true
}

// isGoCommand reports whether exe is a go command binary ("/usr/lib/go/bin/go",
// a toolchain's ".../go1.26.0.linux-amd64/bin/go").
func isGoCommand(exe string) bool {
	exe = strings.TrimSuffix(exe, " (deleted)")
	return filepath.Base(exe) == "go"
}
