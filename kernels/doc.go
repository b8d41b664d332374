// Package kernels is the kernel matrix and the cache that ties the
// fetching, building and boot images of its kernels together: it decides
// what each entry is named, locks, verifies, cleans and prunes it, and
// checks the host before any long work ([Preflight]). The work itself is
// done by three packages below it: debian (apt with a private
// configuration, mirrors, Debian versions), kbuild (module builds, build
// roots, toolchain choice, Kbuild replay, source-kernel builds) and
// bootimage (kernel image formats, vmlinux extraction, arm64 result-port
// drivers).
//
// # The matrix
//
// kernels/matrix.json lists the kernels: for each its architecture
// ("arch": amd64, the default, or arm64), the apt sources lines,
// the meta packages that name its current ABI, the package and path of its
// vmlinuz, its toolchain (the host, or a named Debian build root) and the
// boot profiles the VM tests run. The file is compiled in; adding a kernel
// needs no Go edits. [LoadMatrix] reads it and [Select] picks kernels by
// name.
//
// # Fetching
//
// [Cache.Fetch] updates the entry's private apt lists (see package
// debian) for the kernel's sources, resolves the ABI at fetch time from
// the newest version of the meta packages (linux-image-amd64,
// linux-headers-amd64), and unpacks the image, headers and kbuild
// packages with dpkg-deb -x.
//
// Debian's headers name each other by absolute /usr/src paths; the copy
// in the cache has them rewritten relative to its own location, so KDIR
// works wherever the cache lives, on the host and inside a build root.
//
// # Building modules
//
// [Cache.BuildModule] builds with the kernel's own compiler (see package
// kbuild), on the host or in a build root that is cached and shared by
// every kernel of the matrix that names it. [Preflight] checks before
// any long work what that needs (tools, user namespaces and subordinate
// ids for non-root builds in a root, free space) and reports every
// problem with its fix in one message: the sysctl or AppArmor profile for
// Ubuntu's restriction on user namespaces, or running as root.
//
// # Staleness
//
// A warm [Cache.Fetch] compares the cached kernel with what Debian now
// publishes when its package lists are older than [StaleAfter], and says
// so ("6.1: cached 6.1.0-56-amd64, Debian now has 6.1.0-57-amd64");
// [Cache.Update] moves to the newer kernel.
//
// # Cache safety
//
// Every entry (kernel, build root, module, extracted vmlinux) follows the
// rules of internal/cachefs: it is guarded by an flock lock file, which
// serialises goroutines of one process as well as concurrent processes
// (two go test runs), so a shared build root is created once. Entries are
// built under a temporary name and renamed into place; a manifest, written
// last, records the size and sha256 of the key files and is verified on
// every use (the vmlinuz, the .ko files, the extracted vmlinux, a build
// root's make and compiler). A corrupt entry is logged and rebuilt;
// leftovers of interrupted runs are removed under the entry's lock and
// never used. The cache root carries a marker file; cleaning and pruning
// ([Cache.CleanPlan], [Cache.PrunePlan], [Cache.Remove]) only remove
// entries inside a marked root, each under its lock.
//
// # Environment
//
// Read when called, never at init:
//
//   - KMODTEST_MATRIX: a matrix file to use instead of the built-in one.
//   - KMODTEST_CACHE: the cache directory (default $XDG_CACHE_HOME/kmodtest,
//     else ~/.cache/kmodtest).
//   - the mirror variables of package debian (KMODTEST_MIRROR, …).
//   - KMODTEST_TOOL_TESTS=1: also run the test that downloads kernels
//     (see internal/testenv).
package kernels
