// Package kernels fetches, caches and builds modules for the kernels that
// kmodtest tests against, all taken from Debian's archive.
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
// [Cache.Fetch] runs apt-get and apt-cache with a private configuration
// file under the cache directory, passed through APT_CONFIG (own
// sources.list, package lists and download cache; the host's apt state and
// apt.conf.d, with its hooks, are never read; only its proxy settings are
// carried over). Sources lines get signed-by the Debian archive keyring,
// so apt checks the Release signatures and every package's hash.
// Acquire::Check-Valid-Until is off because mirrors may serve frozen
// snapshots whose Release files have expired. The ABI is resolved at fetch
// time from the newest version of the meta packages (linux-image-amd64,
// linux-headers-amd64) in the entry's sources; the image, headers and
// kbuild packages are unpacked with dpkg-deb -x. Nothing is installed
// system-wide.
//
// # Mirrors
//
// Sources lines name mirrors by placeholder: {mirror}, {security}, and for
// suites that have left the mirrors for Debian's archive of old releases,
// {archive} and {archive-security}. A [MirrorChooser] tries, in order, the
// environment variable, the host's apt sources whose URI ends in /debian
// (or /debian-security), and deb.debian.org, and takes the first whose
// dists/SUITE/InRelease is signed by the Debian archive keyring (gpgv) and
// names SUITE: a third-party repository under a …/debian URI is skipped.
// The log says which mirror serves which suites. A suite that the mirrors
// answer 404 for but the archive serves is taken from the archive, with a
// message to write {archive} in kernels/matrix.json.
//
// Debian's headers name each other by absolute /usr/src paths; the copy
// in the cache has them rewritten relative to its own location, so KDIR
// works wherever the cache lives, on the host and inside a build root.
//
// # Building modules
//
// [Cache.BuildModule] builds with the kernel's own compiler. A kernel
// whose toolchain is "host" is built on the host only when the host's
// compiler is that very compiler: its version text equals the headers'
// CONFIG_CC_VERSION_TEXT (Debian 12's gcc-12 for 6.1; not Ubuntu's gcc-12,
// another version, nor Debian 13, which has none). Otherwise, and for
// kernels that name a build root, make runs in a Debian build root made with mmdebstrap
// (--variant=apt plus the compiler, make, pahole and the libraries the
// kbuild tools need), cached and shared by every kernel of the matrix
// that names it. The build runs in a private mount namespace (unshare -m)
// with /proc mounted (objtool reads it) and the kernel tree and module
// source bind-mounted at /kmodtest/kernel and /kmodtest/src, then chroot.
//
// # Root and non-root
//
// Downloading and unpacking kernels needs no privileges. For build roots:
//
//   - as root, mmdebstrap --mode=root writes the root, and builds use
//     unshare -m;
//   - as a normal user, mmdebstrap --mode=unshare writes a tarball that is
//     unpacked as the user (this needs subordinate ids for the user in
//     /etc/subuid and /etc/subgid, and unprivileged user namespaces), and
//     builds use unshare -r -m, with /proc and /dev bind-mounted from the
//     host when a fresh proc cannot be mounted.
//
// Host builds need make and, for kernels with module BTF (6.12 and
// later), pahole (Debian package dwarves). Missing tools are reported with
// the package to install; the README's `make setup` installs them all.
// [Preflight] checks all of it before any long work (tools, user
// namespaces and subordinate ids for non-root builds in a root, free
// space) and reports every problem with its fix in one message: the
// sysctl or AppArmor profile for Ubuntu's restriction on user namespaces,
// or running as root.
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
//   - KMODTEST_MIRROR, KMODTEST_SECURITY_MIRROR, KMODTEST_ARCHIVE_MIRROR,
//     KMODTEST_ARCHIVE_SECURITY_MIRROR: the mirror for {mirror},
//     {security}, {archive} and {archive-security}; when set, the only
//     candidate (still verified).
//   - http_proxy: honoured by apt.
//   - KMODTEST_INTEGRATION=1: run the tests that download kernels.
package kernels
