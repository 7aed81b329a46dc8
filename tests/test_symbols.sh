#!/bin/sh
# SPDX-License-Identifier: MIT
# The library exports exactly what the headers declare EDDY_API, each
# symbol versioned as src/libeddy.map lists it: a function added to a header
# but not to the map (or left in the map after its removal) fails here
# rather than in a user's link.
set -eu
srcdir=${srcdir:-.}
lib=.libs/libeddy.so
[ -f "$lib" ] || { echo "no shared library (--disable-shared): skipped"; exit 77; }
command -v nm >/dev/null || { echo "no nm: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The name right before the first ( or [ of each EDDY_API declaration.
cat "$srcdir"/include/eddy/*.h include/eddy/version.h | grep -v '^#' | tr '\n' ' ' |
  grep -o 'EDDY_API[^;(\[]*[(\[]' |
  sed 's/.*[^A-Za-z0-9_]\([A-Za-z_][A-Za-z0-9_]*\) *[(\[]$/\1/' |
  sort -u >"$tmp/headers"
sed -n 's/^ *\(eddy_[A-Za-z0-9_]*\);$/\1/p' "$srcdir/src/libeddy.map" | sort -u >"$tmp/map"
# (The A entry nm shows is the version node itself, not a symbol.)
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sort -u >"$tmp/exports"

status=0
if ! cmp -s "$tmp/headers" "$tmp/map"; then
  echo "src/libeddy.map and the EDDY_API declarations differ (< headers, > map):"
  diff "$tmp/headers" "$tmp/map" || true
  status=1
fi
# With the version script every export carries the node the map lists it
# under (eddy_x@@EDDY_0.1, eddy_y@@EDDY_0.2); without one (a linker lacking
# it) the bare names must still match.
if grep -q '@' "$tmp/exports"; then
  awk '/^EDDY_[0-9.]* *\{/ { node = $1 }
       /^ *eddy_[A-Za-z0-9_]*;$/ { sub(/^ */, ""); sub(/;$/, ""); print $0 "@@" node }' \
    "$srcdir/src/libeddy.map" | sort -u >"$tmp/want"
else
  cp "$tmp/map" "$tmp/want"
fi
if ! cmp -s "$tmp/want" "$tmp/exports"; then
  echo "libeddy.so exports differ from src/libeddy.map (< map, > library):"
  diff "$tmp/want" "$tmp/exports" || true
  status=1
fi
[ $status -eq 0 ] && echo "$(wc -l <"$tmp/map") symbols, all declared, listed and exported"
exit $status
