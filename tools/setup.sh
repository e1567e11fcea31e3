#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs Tessera's Debian 12 build and test dependencies (when run as root or with sudo
# available) and configures + builds into ./build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=$(grep -v '^#' tools/debian-packages.txt | tr '\n' ' ')
missing=$(for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "setup: installing $(echo $missing | wc -w) Debian packages"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi

if [ ! -f build/build.ninja ]; then
  meson setup build "$@"
fi
ninja -C build
