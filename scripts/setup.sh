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

if ! command -v go >/dev/null 2>&1; then
	echo "setup: Go is not installed. Install Go 1.21 or newer (https://go.dev/doc/install);" >&2
	echo "       go.mod's toolchain line then fetches the exact version through the module proxy." >&2
	exit 1
fi
echo "setup: downloading Go modules"
go mod download
echo "setup: done ($(go version), $(qemu-system-x86_64 --version | head -n 1))"
