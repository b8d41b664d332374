package kbuild

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kmodtest/kmodtest/internal/proc"
)

// headersCCText returns CONFIG_CC_VERSION_TEXT from the headers in kdir:
// the first line of `$CC --version` of the compiler the kernel was built
// with (include/config/auto.conf, else .config).
func headersCCText(kdir string) (string, error) {
	for _, name := range []string{filepath.Join("include", "config", "auto.conf"), ".config"} {
		f, err := os.Open(filepath.Join(kdir, name))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			v, ok := strings.CutPrefix(sc.Text(), "CONFIG_CC_VERSION_TEXT=")
			if !ok {
				continue
			}
			f.Close()
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
			return v, nil
		}
		f.Close()
	}
	return "", fmt.Errorf("no CONFIG_CC_VERSION_TEXT in %s (include/config/auto.conf or .config)", kdir)
}

// hostCCText returns what Kbuild compares with CONFIG_CC_VERSION_TEXT:
// the first line of `LC_ALL=C cc --version`, without '#' characters.
func hostCCText(ctx context.Context, cc string) (string, error) {
	cmd := proc.Command(ctx, cc, "--version")
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := proc.Output(cmd)
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", cc, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.ReplaceAll(strings.TrimSpace(first), "#", ""), nil
}

// HostCompiler returns the compiler a host build for t uses: the CC= of
// its make variables, else the one the headers name, with the cross
// prefix for a kernel of another architecture (aarch64-linux-gnu-gcc-12).
func HostCompiler(t Target) string {
	if cc := makeCC(t.MakeVars); cc != "" {
		return cc
	}
	return CrossCompile(t.Arch) + kernelCC(t.KDIR)
}

// sameCrossRelease reports whether a cross compiler's version text names
// the GCC release of a kernel's: the same last field ("12.2.0"). Debian
// builds its bookworm arm64 kernel natively ("gcc-12 (Debian
// 12.2.0-14+deb12u1) 12.2.0") and no cross compiler prints that text, so
// for cross builds the release is the identity; the Debian revision may
// differ (bookworm's gcc-12-aarch64-linux-gnu is 12.2.0-14).
func sameCrossRelease(got, want string) bool {
	g, w := strings.Fields(got), strings.Fields(want)
	return len(g) > 0 && len(w) > 0 && g[len(g)-1] == w[len(w)-1]
}

// HostFits decides whether modules for t may be built on the host, by
// the compiler's identity rather than its name: only when the host
// compiler's version text is the one the headers record (Ubuntu's gcc-12
// is 12.3, Debian 12's is 12.2, and Kbuild warns about the difference,
// which fails the build step), or, for a cross build, names the same GCC
// release. It says why, for the log.
func HostFits(ctx context.Context, t Target) (ok bool, why string, err error) {
	want, err := headersCCText(t.KDIR)
	if err != nil {
		return false, "", err
	}
	cc := HostCompiler(t)
	if _, err := exec.LookPath(cc); err != nil {
		return false, fmt.Sprintf("the host has no %s (the kernel was built with %q)", cc, want), nil
	}
	got, err := hostCCText(ctx, cc)
	if err != nil {
		return false, "", err
	}
	if got == want {
		return true, fmt.Sprintf("host %s is the kernel's own compiler (%q)", cc, want), nil
	}
	if CrossCompile(t.Arch) != "" && sameCrossRelease(got, want) {
		return true, fmt.Sprintf("host %s (%q) is a cross compiler of the kernel's GCC release (%q)", cc, got, want), nil
	}
	return false, fmt.Sprintf("host %s is %q, the kernel was built with %q", cc, got, want), nil
}
