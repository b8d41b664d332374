package kernels

import (
	"context"
	"fmt"

	"github.com/kmodtest/kmodtest/kbuild"
)

// chooseRoot decides where the module of a kernel whose matrix entry
// prefers the host is built: on the host when its compiler is the
// kernel's own (kbuild.HostFits), else in k.Root, the build root of the
// kernel's suite. It returns nil for a host build, and why, for the log.
func chooseRoot(ctx context.Context, k Kernel, kdir string) (*BuildRoot, string, error) {
	ok, reason, err := kbuild.HostFits(ctx, kbuild.Target{Name: k.Name, Arch: k.Arch, KDIR: kdir, MakeVars: k.MakeVars})
	if err != nil || ok {
		return nil, reason, err
	}
	if k.Root == nil {
		return nil, "", fmt.Errorf("kernel %s: %s, and the matrix has no build root for its suite: add a build_roots entry named %q with the kernel's compiler to kernels/matrix.json, or install that very compiler", k.Name, reason, fallbackRoot(k))
	}
	return k.Root, reason + ": building in the " + k.Root.Name + " build root", nil
}

// Compiler returns the compiler modules for f are built with on the host
// (the make variables' CC=, else the one the headers name).
func (f *Fetched) Compiler() string {
	return kbuild.HostCompiler(f.target())
}
