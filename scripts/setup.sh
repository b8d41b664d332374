#!/usr/bin/env bash
# Installs what the harness needs on a Debian or Ubuntu machine, through the
# system's package manager. Safe to run again. Needs root (or sudo).
set -euo pipefail

packages=(
	qemu-system-x86        # boots the kernels
	gcc make patch         # builds the module on the host (gcc-12 for bookworm kernels)
	gcc-12
	dwarves                # pahole: BTF for modules of 6.12 and later
	libelf-dev             # objtool/resolve_btfids at module build time
	mmdebstrap             # build roots for kernels whose compiler the host lacks
	debian-archive-keyring # verifies Debian's archive, also on Ubuntu
	uidmap                 # mmdebstrap --mode=unshare for non-root users
	apt dpkg xz-utils zstd # private apt downloads and package extraction
	ca-certificates git
	flex bison bc libssl-dev # builds the 6.12-debug kernel from Debian's source package
	lcov                   # gcov data to an HTML line coverage page (genhtml)
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
else
	echo "setup: system packages already installed"
fi

# Go: any version from 1.21 on will do, since go.mod's toolchain line
# makes it fetch the exact one through the module proxy.
go_ok() {
	command -v go >/dev/null 2>&1 || return 1
	v=$(go env GOVERSION 2>/dev/null | sed 's/^go//') || return 1
	[ "$(printf '%s\n1.21\n' "$v" | sort -V | head -n 1)" = "1.21" ]
}
if ! go_ok; then
	candidate=$(apt-cache policy golang-go 2>/dev/null | awk '/Candidate:/ {print $2}' | sed 's/^[0-9]*://; s/~.*//')
	if [ -n "$candidate" ] && [ "$(printf '%s\n1.21\n' "$candidate" | sort -V | head -n 1)" = "1.21" ]; then
		echo "setup: installing golang-go $candidate"
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends golang-go
	fi
fi
if ! go_ok; then
	echo "setup: Go 1.21 or newer is needed and this system's packages do not have it" >&2
	echo "       (Debian 12 ships 1.19; Ubuntu 24.04 and Debian 13 ship newer ones)." >&2
	echo "       Install it from https://go.dev/doc/install, put it on PATH and run this again." >&2
	exit 1
fi
echo "setup: downloading Go modules"
go mod download
echo "setup: done ($(go version), $(qemu-system-x86_64 --version | head -n 1))"
