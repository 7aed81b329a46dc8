#!/bin/sh
# SPDX-License-Identifier: MIT
# An old binary against a newer library (docs/design.md, "Binary
# compatibility"): tests/abi_client, compiled once against this tree's
# headers, runs against libeddy.so as built and then, unchanged, against
# tests/abi/libeddy.so, whose option structs have a field taken out of
# their reserved tails. Run from the build directory (make check).
set -eu
grown=tests/abi/.libs
[ -f .libs/libeddy.so.0 ] && [ -f $grown/libeddy.so.0 ] ||
  { echo "no shared libraries (--disable-shared): skipped"; exit 77; }
# The program itself, not libtool's wrapper script, which would put the
# build's own .libs first on the library path.
prog=tests/.libs/abi_client
[ -x "$prog" ] || prog=tests/abi_client
head -c 4 "$prog" | grep -q ELF ||
  { echo "FAIL: no abi_client binary"; exit 1; }

LD_LIBRARY_PATH=$PWD/.libs "$prog" .libs
LD_LIBRARY_PATH=$PWD/$grown "$prog" $grown
