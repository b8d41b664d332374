package kbuild

import "github.com/kmodtest/kmodtest/internal/arch"

// A Target is a kernel modules are built for: its headers (or build
// tree) and where the build runs.
type Target struct {
	// Name is the kernel's name, for messages.
	Name string
	// Arch is the kernel's architecture: another than the host's is
	// cross-built.
	Arch    arch.Arch
	Release string
	// KDIR is the headers tree make -C is given.
	KDIR string
	// Tree is the root of the kernel's extracted packages (it holds
	// usr/src/...), bind-mounted into a build root.
	Tree string
	// MakeVars are extra make variables ("CC=gcc").
	MakeVars []string
	// Root is the build root's entry directory, "" to build on the host.
	Root string
}

// CrossCompile is the CROSS_COMPILE prefix for modules of a kernel of
// architecture a, "" when a is this machine's architecture.
func CrossCompile(a arch.Arch) string {
	if a == "" || a == arch.Host() {
		return ""
	}
	return map[arch.Arch]string{arch.AMD64: "x86_64-linux-gnu-", arch.ARM64: "aarch64-linux-gnu-"}[a]
}

// archMakeVars are the make variables that cross-build modules for a
// (Debian's headers set ARCH themselves; saying it again is harmless).
func archMakeVars(a arch.Arch) []string {
	cross := CrossCompile(a)
	if cross == "" {
		return nil
	}
	return []string{"ARCH=" + map[arch.Arch]string{arch.AMD64: "x86", arch.ARM64: "arm64"}[a], "CROSS_COMPILE=" + cross}
}
