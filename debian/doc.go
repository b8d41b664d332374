// Package debian is kmodtest's client of Debian's archive: apt with a
// private configuration, the choice of a mirror that really serves a
// suite, and Debian's version order. It knows nothing of kernels or of
// the cache; package kernels decides what to fetch and where it lives.
// It is apart because it is the one part that talks to the network, and
// its rules (signatures, proxies, the host's apt hooks) are Debian's.
//
// # apt
//
// An [Apt] runs apt-get and apt-cache with a private configuration file
// passed through APT_CONFIG (own sources.list, package lists and download
// cache; the host's apt state and apt.conf.d, with its hooks, are never
// read; only its proxy settings are carried over). [SourcesList] gives
// lines without options signed-by the Debian archive keyring, so apt
// checks the Release signatures and every package's hash.
// Acquire::Check-Valid-Until is off because mirrors may serve frozen
// snapshots whose Release files have expired. Nothing is installed
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
// # Environment
//
// Read when called, never at init:
//
//   - KMODTEST_MIRROR, KMODTEST_SECURITY_MIRROR, KMODTEST_ARCHIVE_MIRROR,
//     KMODTEST_ARCHIVE_SECURITY_MIRROR: the mirror for {mirror},
//     {security}, {archive} and {archive-security}; when set, the only
//     candidate (still verified).
//   - http_proxy: honoured by apt.
package debian
