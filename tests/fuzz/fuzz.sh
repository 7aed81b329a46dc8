#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/fuzz/fuzz.sh SECONDS TARGET... - builds the libFuzzer binaries with
# clang and runs each TARGET (stream, http, tls) for SECONDS; make fuzz
# calls it (FUZZ_SECONDS). The library is compiled in again with clang's
# ASan + UBSan + coverage instrumentation, apart from the ordinary build,
# so a gcc build tree can fuzz too.
#
# Environment (the Makefile sets it): FUZZ_CC, FUZZ_CPPFLAGS (include
# paths and defines), FUZZ_LIBS, FUZZ_SOURCES (the library's sources) and
# FUZZ_EXTRA_SOURCES (more for every target), both relative to srcdir.
#
# Each target runs over a working corpus in tests/fuzz/TARGET/work (the
# build tree), seeded from the committed corpus; new crashes land in
# tests/fuzz/TARGET/findings. Exits non-zero if a target found a crash.
set -eu

seconds=${1:?usage: fuzz.sh SECONDS TARGET...}
shift
: "${FUZZ_CC:?}" "${srcdir:?}"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# The same flags as the sanitizer build, plus what libFuzzer needs.
cflags="-g -O1 -std=gnu11 $san"
obj=tests/fuzz/obj
mkdir -p "$obj"

# The library, once per change of any of its sources or headers.
newest=$(ls -t $(for f in $FUZZ_SOURCES; do echo "$srcdir/$f"; done) \
  "$srcdir"/src/*/*.h "$srcdir"/include/eddy/*.h | head -n 1)
objs=""
for f in $FUZZ_SOURCES; do
  # C and assembly (the coroutine switch); headers are not compiled.
  case $f in *.c|*.S) ;; *) continue ;; esac
  o="$obj/$(echo "$f" | tr / _ | sed 's/\.[cS]$/.o/')"
  objs="$objs $o"
  if [ ! -f "$o" ] || [ "$newest" -nt "$o" ]; then
    echo "  FUZZCC   $f"
    $FUZZ_CC $cflags -fsanitize=fuzzer-no-link $FUZZ_CPPFLAGS -c "$srcdir/$f" -o "$o"
  fi
done

# Sources every target links besides the library (the examples' parsers).
extra=""
for f in ${FUZZ_EXTRA_SOURCES:-}; do extra="$extra $srcdir/$f"; done

status=0
for t in "$@"; do
  src="$srcdir/tests/fuzz/fuzz_$t.c"
  echo "  FUZZLD   tests/fuzz/fuzz-$t"
  $FUZZ_CC $cflags -fsanitize=fuzzer $FUZZ_CPPFLAGS "$src" $extra $objs \
    -o "tests/fuzz/fuzz-$t" $FUZZ_LIBS
  work="tests/fuzz/$t/work"
  findings="tests/fuzz/$t/findings"
  mkdir -p "$work" "$findings"
  echo "== fuzzing $t for ${seconds}s (corpus $work, crashes to $findings)"
  if ! "tests/fuzz/fuzz-$t" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 \
      -dict="$srcdir/tests/fuzz/$t.dict" -artifact_prefix="$findings/" \
      "$work" "$srcdir/tests/fuzz/$t/corpus"; then
    echo "fuzz.sh: $t found a crash: $(ls -t "$findings" | head -n 1) in $findings" >&2
    status=1
  fi
done
exit $status
