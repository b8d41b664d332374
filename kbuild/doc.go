// Package kbuild runs Kbuild: it builds out-of-tree modules against a
// kernel's headers ([Make]; [MakeSpec] for a module project's own
// command, directory and modules; [BuildIn] with its replay of Kbuild's
// recorded commands), decides whether the host's compiler is the
// kernel's own ([HostFits]), makes Debian build roots with mmdebstrap
// ([MakeRoot]) and runs builds inside them, and builds a kernel from a
// source tree ([BuildKernel]).
//
// It is apart from package kernels because it is about compilers and
// make, not about where things come from or how they are cached: it
// works in directories it is given, and kernels names, locks and keeps
// the results.
//
// # Which compiler
//
// A module is built on the host only when the host's compiler is the
// very compiler the kernel was built with: its version text equals the
// headers' CONFIG_CC_VERSION_TEXT (Debian 12's gcc-12 for 6.1; not
// Ubuntu's gcc-12, another version). Otherwise make runs in a Debian
// build root made with mmdebstrap (--variant=extract: the compiler, make,
// pahole, the libraries the kbuild tools need and the shell tools of
// Kbuild's scripts, unpacked with their dependencies, not installed). The build runs in a
// private mount namespace (unshare -m; unshare -r -m as a normal user)
// with /proc mounted (objtool reads it) and the kernel tree and module
// source bind-mounted at /kmodtest/kernel and /kmodtest/src, then chroot.
//
// # Root and non-root
//
// As root, mmdebstrap --mode=root writes the root, and builds use
// unshare -m; as a normal user, mmdebstrap --mode=unshare writes a
// tarball that is unpacked as the user (this needs subordinate ids in
// /etc/subuid and /etc/subgid, and unprivileged user namespaces), and
// builds use unshare -r -m, with /proc and /dev bind-mounted from the
// host when a fresh proc cannot be mounted. Host builds need make and,
// for kernels with module BTF (6.12 and later), pahole.
package kbuild
