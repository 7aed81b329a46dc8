#!/bin/sh
# SPDX-License-Identifier: MIT
# The Debian packages, as CI builds and uses them: dpkg-buildpackage -b
# from a clean copy of the tree (in a git checkout the files git tracks, as
# they are in the working tree; else all of it), lintian (errors fail), then the packages installed and an
# outside program compiled against them with pkg-config and run.
# Installs its tools with scripts/install-deps.sh --packaging; runs as root
# (or with sudo). The build's make check is skipped unless CHECK=1, since
# CI has just run the same make check itself: set CHECK=1 for the full
# build a buildd would do.
set -eu
cd "$(dirname "$0")/.."
top=$PWD
./scripts/install-deps.sh --packaging
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== dpkg-buildpackage -us -uc -b in a clean copy"
mkdir "$work/eddy"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z | xargs -0 cp --parents -p -t "$work/eddy"
else
  cp -pR . "$work/eddy"   # an unpacked tarball
fi
[ "${CHECK:-0}" = 1 ] || export DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}"
(cd "$work/eddy" && dpkg-buildpackage -us -uc -b -j2 >"$work/build.log" 2>&1) ||
  { tail -n 80 "$work/build.log"; exit 1; }
ls "$work"/*.deb

echo "== lintian"
lintian --fail-on error "$work"/*.changes

echo "== install, then build an outside program with pkg-config"
$sudo apt-get install -y -qq "$work"/libeddy0_*.deb "$work"/libeddy-dev_*.deb \
  "$work"/eddy-examples_*.deb >/dev/null
man -w eddy_stream_read_until >/dev/null
cat >"$work/outside.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <eddy.h>

int main(void)
{
  eddy_loop_t *loop = eddy_loop_new();
  eddy_future_t *f = eddy_sleep(loop, 0.01);
  int rc = eddy_loop_run_until(loop, f, 5.0);
  eddy_future_unref(f);
  eddy_loop_free(loop);
  printf("eddy %s (headers %s): %s\n", eddy_version_string(), EDDY_VERSION_STRING,
         rc == 0 ? "ok" : eddy_strerror(rc));
  return rc == 0 && strcmp(eddy_version_string(), EDDY_VERSION_STRING) == 0 ? 0 : 1;
}
C
cc -std=c11 -Wall -Wextra -Werror -o "$work/outside" "$work/outside.c" \
  $(pkg-config --cflags --libs eddy)
"$work/outside"
test -x /usr/libexec/eddy/echo-server
$sudo apt-get remove -y -qq eddy-examples libeddy-dev libeddy0 >/dev/null
echo "packaging ok ($top)"
