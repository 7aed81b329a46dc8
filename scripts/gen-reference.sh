#!/bin/sh
# SPDX-License-Identifier: MIT
# Renders the API reference from the public headers with Doxygen.
#   gen-reference.sh man  DOXYGEN SRCDIR BUILDDIR OUTDIR  -> OUTDIR/man3/*.3
#   gen-reference.sh html DOXYGEN SRCDIR BUILDDIR OUTDIR  -> OUTDIR/index.html
# Man pages: one per header (eddy_stream.h(3) ...) with every function,
# type and macro, one per struct, and a .so link page per function, type
# and macro name, so `man eddy_stream_read_until` finds its header's page.
# Doxygen's link pages for struct members and enumerators (max_buffer_size,
# EDDY_ECLOSED...) are dropped: names that short would collide in man3.
# Warnings go to BUILDDIR/doxygen-warnings.log, not the build output.
set -eu
mode=$1 doxygen=$2 srcdir=$3 builddir=$4 out=$5
case $out in /*) ;; *) out=$PWD/$out ;; esac
headers="$srcdir/include/eddy.h"
for h in error loop future stream tcp tls coro; do
  headers="$headers $srcdir/include/eddy/$h.h"
done
headers="$headers $builddir/include/eddy/version.h"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

{
  cat "$srcdir/docs/Doxyfile"
  echo "INPUT = $headers"
  echo "OUTPUT_DIRECTORY = $tmp"
  echo "WARN_LOGFILE = $builddir/doxygen-warnings.log"
  echo "PROJECT_NUMBER = $(sed -n 's/^#define EDDY_VERSION_STRING "\(.*\)"/\1/p' "$builddir/include/eddy/version.h")"
  case $mode in
    man) echo "GENERATE_MAN = YES" ;;
    html) echo "GENERATE_HTML = YES"; echo "HTML_OUTPUT = html" ;;
    *) echo "gen-reference.sh: unknown mode $mode" >&2; exit 2 ;;
  esac
} | "$doxygen" -

if [ "$mode" = html ]; then
  rm -rf "$out" && mv "$tmp/html" "$out"
  exit 0
fi

cd "$tmp/man/man3"
# Header pages are named after the file (stream.h.3); give them the
# library's prefix, in their names, titles and the links pointing at them.
for h in error loop future stream tcp tls coro version; do
  [ -f "$h.h.3" ] || continue
  sed "s/^\.TH \"$h\.h\"/.TH \"eddy_$h.h\"/; /^\.SH NAME/{n;s/^$h\.h/eddy_$h.h/;}" "$h.h.3" >"eddy_$h.h.3"
  rm "$h.h.3"
  for f in *.3; do
    grep -q "^\.so man3/$h\.h\.3\$" "$f" && echo ".so man3/eddy_$h.h.3" >"$f"
  done
done
# whatis(1) wants "name \- summary"; header and struct pages have no summary.
for f in *.3; do
  grep -q '^\.so ' "$f" && continue
  sed '/^\.SH NAME/{n;/\\-/!s/$/ \\- eddy API reference/;}' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
done
for f in *.3; do
  case $f in
    eddy*_.3 | EDDY*_.3 | EDDY_API.3) rm "$f" ;;   # internals (EDDY_ERR_ENUM_)
    eddy* | EDDY*) ;;
    *) rm "$f" ;;
  esac
done
rm -rf "$out/man3" && mkdir -p "$out/man3" && cp -p ./*.3 "$out/man3/"
