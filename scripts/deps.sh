#!/usr/bin/env bash
# deps.sh: install every Debian package zova needs to build, test and run.
# Idempotent: asks apt only for what dpkg says is missing, so `make` may call
# it whenever a library is absent without touching a complete machine.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config
  libzmq3-dev libczmq-dev
  libvirt-dev libvirt-clients
  libmsgpack-dev liblmdb-dev lmdb-utils
  libjansson-dev uuid-dev libinih-dev libcmocka-dev libsodium-dev
  valgrind procps psmisc
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
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
