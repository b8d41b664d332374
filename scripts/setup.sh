#!/usr/bin/env bash
# Installs what the harness needs on a Debian or Ubuntu machine, through the
# system's package manager. Safe to run again. Needs root (or sudo).
set -euo pipefail
# Run from anywhere: go mod download below needs the repository's go.mod.
cd "$(dirname "$0")/.."

packages=(
	qemu-system-x86        # boots the kernels
	qemu-system-arm        # boots the arm64 kernels (qemu-system-aarch64)
	gcc make patch         # builds the module on the host
	libc6-dev              # libc.a: kmodtest check links a project's C tests statically for the guest
	dwarves                # pahole: BTF for modules of 6.12 and later
	libelf-dev             # objtool/resolve_btfids at module build time
	mmdebstrap             # build roots for kernels whose compiler the host lacks
	debian-archive-keyring # verifies Debian's archive, also on Ubuntu
	gpgv                   # checks that a mirror's InRelease is Debian's
	uidmap                 # mmdebstrap --mode=unshare for non-root users
	apt dpkg xz-utils zstd # private apt downloads and package extraction
	mount util-linux       # builds in a build root: mount, unshare (Debian 13 apt variant lacks mount)
	ca-certificates git
	flex bison bc libssl-dev # builds the 6.12-debug kernel from Debian's source package
	lcov                   # gcov data to an HTML line coverage page (genhtml)
	gdb                    # kmodtest shell -gdb and its test (TestShellGDB skips without it)
)
# The harness builds on the host only with the very compiler a kernel was
# built with (same version text as the headers' CONFIG_CC_VERSION_TEXT),
# else in a build root. Only Debian 12's gcc-12 is the 6.1 kernel's own;
# Ubuntu's gcc-12 is another version and Debian 13 has none.
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
if [ "$codename" = "bookworm" ]; then
	packages+=(gcc-12)
fi

# Installed where the distribution has them: without the cross compiler
# the arm64 kernels' modules are built in a build root that has it.
optional=(
	gcc-12-aarch64-linux-gnu # cross-builds the module for bookworm's arm64 kernel on the host
	gcc-12                   # builds the 6.12-debug kernel and its module (any 12.x: both are built here)
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for p in "${optional[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		if apt-cache show "$p" >/dev/null 2>&1; then
			missing+=("$p")
		else
			echo "setup: $p is not in this system's package lists (without gcc-12-aarch64-linux-gnu arm64 modules are built in a build root; without gcc-12 the 6.12-debug kernel cannot be built)"
		fi
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	$sudo apt-get update -q
	# Through env, so that the variable survives sudo.
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
	echo "setup: system packages already installed"
fi

# Go: any version from 1.21 on will do. go.mod says `go 1.26.8`, and a Go
# from 1.21 on that is older than that downloads and runs go1.26.8 through
# the module proxy by itself (GOTOOLCHAIN=auto, Go's default).
go_ok() {
	command -v go >/dev/null 2>&1 || return 1
	v=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null | sed 's/^go//') || return 1
	[ "$(printf '%s\n1.21\n' "$v" | sort -V | head -n 1)" = "1.21" ]
}
if ! go_ok; then
	candidate=$(apt-cache policy golang-go 2>/dev/null | awk '/Candidate:/ {print $2}' | sed 's/^[0-9]*://; s/~.*//')
	if [ -n "$candidate" ] && [ "$(printf '%s\n1.21\n' "$candidate" | sort -V | head -n 1)" = "1.21" ]; then
		echo "setup: installing golang-go $candidate"
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends golang-go
	fi
fi
if ! go_ok; then
	echo "setup: Go 1.21 or newer is needed and this system's packages do not have it" >&2
	echo "       (Debian 12 ships 1.19; Ubuntu 24.04 and Debian 13 ship newer ones)." >&2
	echo "       Install it from https://go.dev/doc/install, put it on PATH and run this again." >&2
	exit 1
fi
if [ "$(go env GOTOOLCHAIN)" = "local" ] && [ "$(GOTOOLCHAIN=local go env GOVERSION)" != "go$(awk '/^go / {print $2}' go.mod)" ]; then
	echo "setup: GOTOOLCHAIN=local keeps $(go env GOVERSION) from fetching go.mod's Go;" >&2
	echo "       run: go env -w GOTOOLCHAIN=auto  (or export GOTOOLCHAIN=auto) and run this again." >&2
	exit 1
fi
echo "setup: downloading Go modules (and go.mod's Go, if this one is older)"
go mod download
echo "setup: done ($(go version), $(qemu-system-x86_64 --version | head -n 1), $(qemu-system-aarch64 --version | head -n 1))"

# User namespaces: a normal user builds modules in build roots through
# unshare -r, which some hosts refuse (the harness's preflight says so too).
if [ "$(id -u)" -ne 0 ] && ! unshare -r -m true 2>/dev/null; then
	echo "setup: note: this user cannot create user namespaces (unshare -r fails)." >&2
	if [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null)" = "1" ]; then
		echo "       Ubuntu restricts them: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" >&2
	fi
	echo "       Kernels built in a build root need them; see docs/setup.md, \"The preflight, and Ubuntu's user namespaces\"." >&2
fi
