#!/bin/sh
# SPDX-License-Identifier: MIT
# make check-faults: eddy under injected faults (tests/helpers/faults.c).
#
#   1. The stream, TCP and TLS Check suites with a fraction FAULTS_RATE_IO
#      of their socket calls failing with EINTR or EAGAIN or cut short (and
#      epoll_wait woken early or with fewer events). Every test must pass:
#      such results are ones the kernel may give at any time. No allocation
#      faults here: the suites assert that what they set up succeeds.
#   2. examples/echo-server (plain and TLS) and examples/http-hello with the
#      same I/O faults and a fraction FAULTS_RATE_ALLOC of allocations
#      failing, under verifying load (tests/half_close_load.py,
#      tests/soak.py). A connection may end early with an error when memory
#      runs out, but what a client gets back must be an exact prefix of
#      what it sent (echo) or a whole, correct answer (HTTP); the server
#      must keep serving, stay up and stop cleanly on SIGTERM.
#   3. The same servers with I/O faults only: every byte must come back
#      (half_close_load.py, tests/helpers/line-client).
#   4. echo-server, plain and TLS, with I/O faults and exactly one
#      allocation failing, each in turn (see sweep below).
#
# Usage (from the build directory): check-faults.sh SRCDIR
# Environment: FAULTS_RATE_IO, FAULTS_RATE_ALLOC, FAULTS_SEED (defaults
# 0.05, 0.002, 1). Everything is on 127.0.0.1, bounded by timeout, and
# stopped by PID.
set -u
srcdir=${1:-.}
RATE_IO=${FAULTS_RATE_IO:-0.05}
RATE_ALLOC=${FAULTS_RATE_ALLOC:-0.002}
SEED=${FAULTS_SEED:-1}
SHIM=$(pwd)/tests/helpers/.libs/libeddy-faults.so
[ -f "$SHIM" ] || { echo "FAIL: $SHIM not built"; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "FAIL: check-faults needs python3"; exit 1; }

tmp=$(mktemp -d) || exit 1
pids=
cleanup() {
  for p in $pids; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
REPORT=$tmp/report

# injected FILE: the number of faults the shim's processes reported in FILE
# (its lines are "pid N: NAME COUNT NAME COUNT ..."; "allocs" counts calls).
injected() {
  awk '{ for (i = 3; i < NF; i += 2) if ($i != "allocs") n += $(i + 1) } END { print n + 0 }' \
    "$1" 2>/dev/null || echo 0
}

echo "== check-faults: seed $SEED, I/O fault rate $RATE_IO, allocation fault rate $RATE_ALLOC"

# --- 1. the Check suites, I/O faults ---------------------------------------
for suite in test_stream test_stream_end test_tcp_server test_tcp_client test_tls \
             test_tls_server; do
  rm -f "$REPORT"
  start=$(date +%s)
  # CK_TIMEOUT_MULTIPLIER: retried calls make some tests slower.
  timeout 600 env LD_PRELOAD="$SHIM" EDDY_FAULTS_PROGRAMS="$suite" \
    EDDY_FAULTS_SEED="$SEED" EDDY_FAULTS_IO="$RATE_IO" EDDY_FAULTS_REPORT="$REPORT" \
    CK_TIMEOUT_MULTIPLIER=4 "./tests/$suite" >"$tmp/$suite.log" 2>&1
  status=$?
  n=$(injected "$REPORT")
  summary=$(grep -E '^[0-9]+%: Checks' "$tmp/$suite.log" | tail -1)
  echo "$suite: $summary ($n faults injected, $(($(date +%s) - start)) s)"
  if [ $status -ne 0 ]; then
    fail "$suite under I/O faults (exit $status)"
    grep -E ':[EF]:' "$tmp/$suite.log" | head -20
  fi
  [ "$n" -gt 0 ] || fail "$suite: no fault was injected (is the shim loaded?)"
done

# --- the example servers -------------------------------------------------------
# start NAME IO ALLOC CMD...: runs a server under the shim; sets $pid, $port.
start() {
  name=$1 io=$2 alloc=$3
  shift 3
  rm -f "$tmp/$name.out" "$tmp/$name.err"
  timeout --foreground 300 env LD_PRELOAD="$SHIM" EDDY_FAULTS_PROGRAMS="$(basename "$1")" \
    EDDY_FAULTS_SEED="$SEED" EDDY_FAULTS_IO="$io" EDDY_FAULTS_ALLOC="$alloc" \
    EDDY_FAULTS_ALLOC_NTH="${NTH:-0}" EDDY_FAULTS_REPORT="$REPORT" "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  pids="$pids $pid"
  i=0
  while ! grep -q '^listening on ' "$tmp/$name.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
      fail "$name did not start: $(cat "$tmp/$name.err")"
      port=
      return 1
    fi
    sleep 0.1
  done
  port=$(sed -n '1s/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/$name.out")
}

# stop NAME: SIGTERM; the server must exit within 20 s, with status 0 or
# (allocation faults) 1 and a message saying why.
stop() {
  kill -0 "$pid" 2>/dev/null || { fail "$1 died: $(tail -5 "$tmp/$1.err")"; return; }
  kill -TERM "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    fail "$1 ignored SIGTERM"
    kill -9 "$pid"
  fi
  wait "$pid"
  status=$?
  if [ $status -ne 0 ] && ! { [ $status -eq 1 ] && [ -s "$tmp/$1.err" ]; }; then
    fail "$1 exited with $status: $(tail -5 "$tmp/$1.err")"
  fi
  # What the server said about the failures it met, most frequent first
  # (addresses and numbers folded), so a report shows how each was handled.
  if [ -s "$tmp/$1.err" ] && [ -z "${QUIET:-}" ]; then
    echo "$1 logged (exit $status):"
    sed 's/[0-9][0-9]*/N/g' "$tmp/$1.err" | sort | uniq -c | sort -rn | head -n 8
  fi
}

certs=tests/certs
ECHO=./examples/echo-server
HELLO=./examples/http-hello
LOAD="python3 $srcdir/tests/half_close_load.py"
SOAK="python3 $srcdir/tests/soak.py"

# serve_round LABEL IO ALLOC: the three servers under load at these rates.
serve_round() {
  label=$1 io=$2 alloc=$3
  lenient=
  [ "$alloc" = 0 ] || lenient=--allow-cut
  rm -f "$REPORT"

  if start "echo-$label" "$io" "$alloc" "$ECHO" --address 127.0.0.1 --port 0; then
    timeout 120 $LOAD "$port" 200 "$SEED" $lenient >"$tmp/load.out" 2>&1 ||
      fail "echo-server ($label): half_close_load: $(tail -5 "$tmp/load.out")"
    tail -1 "$tmp/load.out" | sed "s/^/echo-server ($label): /"
    if [ "$alloc" = 0 ]; then
      timeout 60 ./tests/helpers/line-client "$port" 20000 100 ||
        fail "echo-server ($label): line-client"
    fi
    timeout 120 $SOAK --host 127.0.0.1 --port "$port" --kind echo --clients 300 \
      --seconds 8 --seed "$SEED" $lenient >"$tmp/soak.out" 2>&1 ||
      fail "echo-server ($label): soak: $(tail -5 "$tmp/soak.out")"
    tail -1 "$tmp/soak.out" | sed "s/^/echo-server ($label): /"
    stop "echo-$label"
  fi

  if start "tls-$label" "$io" "$alloc" "$ECHO" --address 127.0.0.1 --port 0 \
      --certfile "$certs/server.pem" --keyfile "$certs/server.key"; then
    timeout 120 $SOAK --host 127.0.0.1 --port "$port" --kind echo --tls --clients 100 \
      --seconds 8 --seed "$SEED" $lenient >"$tmp/soak.out" 2>&1 ||
      fail "echo-server --certfile ($label): soak: $(tail -5 "$tmp/soak.out")"
    tail -1 "$tmp/soak.out" | sed "s/^/echo-server TLS ($label): /"
    stop "tls-$label"
  fi

  if start "hello-$label" "$io" "$alloc" "$HELLO" --address 127.0.0.1 --port 0; then
    timeout 120 $SOAK --host 127.0.0.1 --port "$port" --kind http --clients 300 \
      --seconds 8 --seed "$SEED" $lenient >"$tmp/soak.out" 2>&1 ||
      fail "http-hello ($label): soak: $(tail -5 "$tmp/soak.out")"
    tail -1 "$tmp/soak.out" | sed "s/^/http-hello ($label): /"
    stop "hello-$label"
  fi
  n=$(injected "$REPORT")
  echo "servers ($label): $n faults injected: $(cat "$REPORT" 2>/dev/null | tr '\n' ';')"
  [ "$n" -gt 0 ] || fail "servers ($label): no fault was injected"
}

# --- 2. the servers, I/O and allocation faults ------------------------------
serve_round "io+alloc" "$RATE_IO" "$RATE_ALLOC"
# --- 3. the servers, I/O faults only: every byte comes back -----------------
serve_round "io" "$RATE_IO" 0

# --- 4. one allocation failing, each in turn ---------------------------------
# A verifying, slowly reading client (tests/sweep_client.py) against
# echo-server, plain and TLS, and echo-server-coro, with I/O faults and allocation N failing
# (EDDY_FAULTS_ALLOC_NTH): every one of the last SWEEP_TAIL allocations of
# the exchange (the echo itself) and every SWEEP_STRIDE-th before them
# (accept, the TLS handshake). The client must get everything or a prefix
# and the end of the connection, never a connection that just stops; this
# found a write whose bookkeeping could not be allocated left queued with
# no write interest.
SWEEP_TAIL=${SWEEP_TAIL:-80}
SWEEP_STRIDE=${SWEEP_STRIDE:-25}
# sweep LABEL SERVER CLIENT-FLAGS SERVER-FLAGS...
sweep() {
  label=$1 server=$2 cflags=$3
  shift 3
  # How many allocations one exchange makes, counted with none failing.
  rm -f "$REPORT"
  NTH=1000000000 start "sweep-$label" "$RATE_IO" 0 "$server" --address 127.0.0.1 --port 0 "$@" ||
    return
  timeout 60 python3 "$srcdir/tests/sweep_client.py" "$port" $cflags >/dev/null
  QUIET=1 stop "sweep-$label"
  total=$(sed -n 's/.* allocs \([0-9][0-9]*\)$/\1/p' "$REPORT" | tail -1)
  [ -n "$total" ] && [ "$total" -gt 0 ] || { fail "sweep $label: no allocation counted"; return; }
  runs=0 cuts=0 n=1
  while [ "$n" -le "$total" ]; do
    NTH=$n start "sweep-$label" "$RATE_IO" 0 "$server" --address 127.0.0.1 --port 0 "$@" ||
      return
    out=$(timeout 60 python3 "$srcdir/tests/sweep_client.py" "$port" $cflags --seed "$n")
    [ $? -eq 0 ] || fail "sweep $label: allocation $n of $total failing: $out"
    case $out in cut*) cuts=$((cuts + 1)) ;; esac
    QUIET=1 stop "sweep-$label"
    runs=$((runs + 1))
    if [ "$n" -lt $((total - SWEEP_TAIL)) ]; then n=$((n + SWEEP_STRIDE)); else n=$((n + 1)); fi
  done
  echo "sweep $label: $runs runs of $total allocations, $cuts cut short, every one a clean prefix"
}
sweep plain "$ECHO" ""
sweep tls "$ECHO" --tls --certfile "$certs/server.pem" --keyfile "$certs/server.key"
# The coroutine twin: its loop of awaits must stop at a failed write too.
[ -x ./examples/echo-server-coro ] && sweep coro ./examples/echo-server-coro ""

if [ $failures -ne 0 ]; then
  echo "check-faults: $failures failure(s) (seed $SEED)"
  exit 1
fi
echo "check-faults: all passed (seed $SEED)"
