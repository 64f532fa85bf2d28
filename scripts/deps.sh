#!/usr/bin/env bash
# deps.sh: install every Debian package zova needs to build, test and run.
# Idempotent: asks apt only for what dpkg says is missing, so `make` may call
# it whenever a library is absent without touching a complete machine.
#
# Real guests are part of zova and of `make test` (tests/e2e/test_guests.sh):
# a libvirtd with its QEMU driver, QEMU for x86 (TCG), qemu-img, and the
# Debian packages scripts/build-test-guest.sh builds the tiny test guest
# from are installed too.  (--guest, once opt-in, is still accepted.)
set -euo pipefail

PACKAGES=(
  build-essential pkg-config
  libzmq3-dev libczmq-dev
  libvirt-dev libvirt-clients
  libmsgpack-dev liblmdb-dev lmdb-utils
  libjansson-dev uuid-dev libinih-dev libcmocka-dev libsodium-dev
  libxml2-dev libpng-dev libssl-dev
  libwebsockets-dev novnc
  valgrind procps psmisc
  python3 hostname coreutils
)

# libvirt-daemon-driver-qemu and ipxe-qemu come in as dependencies; named here
# so that a missing one (the virtio NIC needs ipxe's option ROM) is reinstalled.
GUEST_PACKAGES=(
  libvirt-daemon-system libvirt-daemon-driver-qemu
  qemu-system-x86 ipxe-qemu qemu-utils
  linux-image-amd64 busybox-static qemu-guest-agent
  e2fsprogs cpio xz-utils
)

# The console tests (tests/e2e/test_console.sh) and bench/console.sh, besides
# the noVNC the proxy serves: a headless Chromium that opens it; Node.js and
# npm for their clients (playwright-core and ws from the npm registry,
# installed by the test into a cache outside the repository); iptables to
# count the proxy's connections to a guest's console ports.
CONSOLE_PACKAGES=(
  chromium nodejs npm iptables
)

# scripts/two-hosts.sh (two libvirt hosts on one machine, for moving servers
# between them): iproute2 for the network namespaces and their veth pair,
# util-linux for unshare and nsenter (libvirtd-test.sh enters the namespace).
HOSTS_PACKAGES=(
  iproute2 util-linux
)

PACKAGES+=("${GUEST_PACKAGES[@]}" "${CONSOLE_PACKAGES[@]}" "${HOSTS_PACKAGES[@]}")
for arg in "$@"; do
  case "$arg" in
    --guest) ;;
    *) echo "usage: deps.sh [--guest]" >&2; exit 2 ;;
  esac
done

# installed NAME: NAME is installed, or an installed package provides it.
# A Node.js built outside Debian ships npm itself, provides "npm" and
# conflicts with Debian's npm: asking apt for npm there would remove it.
PROVIDED=$(dpkg-query -W -f='${db:Status-Abbrev}|${Provides}\n' 2>/dev/null \
  | awk -F'|' '$1 ~ /^ii/ { n = split($2, a, /, */); for (i = 1; i <= n; i++) { sub(/ .*/, "", a[i]); if (a[i] != "") print a[i] } }')
installed () {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ] && return 0
  grep -qx -- "$1" <<<"$PROVIDED"
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps.sh: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
