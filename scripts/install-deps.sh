#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs what building and testing eddy needs on Debian/Ubuntu, skipping
# what is already there. Run as root or with sudo available.
set -e
pkgs="build-essential autoconf automake libtool pkg-config libssl-dev check \
openssl python3 curl doxygen liburing-dev libglib2.0-dev"
# --bench: the benchmark peers; --packaging: what scripts/check-packaging.sh
# needs to build, lint and try the Debian packages; --fuzz: clang, whose
# libFuzzer make fuzz needs (large, so not by default: make check replays
# the fuzz corpora without it).
[ "${1:-}" = "--bench" ] && pkgs="$pkgs libuv1-dev libevent-dev python3-tornado wrk"
[ "${1:-}" = "--packaging" ] && pkgs="$pkgs debhelper dpkg-dev lintian man-db git"
[ "${1:-}" = "--fuzz" ] && pkgs="$pkgs clang"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
echo "installing:$missing"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
