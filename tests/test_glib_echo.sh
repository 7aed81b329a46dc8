#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/glib-echo (eddy inside a GLib main loop) driven by real clients:
# Python's socket module, the raw C client (tests/helpers/line-client), and
# many concurrent half-closing clients (tests/half_close_load.py); then,
# in a second run, its --idle timer, an eddy timer that only fires if the GSource hands GLib the
# right timeout; SIGTERM through GLib; and the poll backend refused with a
# clear message. Listens on 127.0.0.1 port 0, bounded by `timeout`, stopped
# by PID. Skipped where configure found no GLib (the example is not built)
# or there is no python3.
set -u

GECHO=./examples/glib-echo
CLIENT=./tests/helpers/line-client
[ -x "$GECHO" ] || { echo "skip: examples/glib-echo not built (no glib-2.0)"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "skip: no python3"; exit 77; }
[ -x "$CLIENT" ] || { echo "FAIL: $CLIENT not built"; exit 1; }

tmp=$(mktemp -d) || exit 1
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*"; [ -f "$tmp/err" ] && cat "$tmp/err"; exit 1; }
py() { timeout 30 python3 -c "$@"; }

# --- command line and the poll backend ----------------------------------------
"$GECHO" --port >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing value: not exit 2"
"$GECHO" --idle -1 >/dev/null 2>&1; [ $? -eq 2 ] || fail "negative idle: not exit 2"
"$GECHO" --help | grep -q usage || fail "--help"
EDDY_BACKEND=poll timeout 10 "$GECHO" --address 127.0.0.1 --port 0 2>"$tmp/poll.err"
[ $? -eq 1 ] || fail "poll backend: not exit 1"
grep -q "cannot embed the poll backend" "$tmp/poll.err" ||
  fail "poll backend: no clear message: $(cat "$tmp/poll.err")"

# start ARGS...: runs glib-echo in the background; sets $pid and $port.
start() {
  # Gone first: the background shell truncates it only when it gets to
  # run, and a second start must not read the first run's line.
  rm -f "$tmp/out" "$tmp/err"
  timeout --foreground 120 "$GECHO" --address 127.0.0.1 --port 0 "$@" \
    >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  i=0
  while ! grep -q '^listening on ' "$tmp/out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 100 ] || fail "no 'listening on' line"
    kill -0 "$pid" 2>/dev/null || fail "exited early"
    sleep 0.1
  done
  port=$(sed -n '1s/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/out")
  [ -n "$port" ] || fail "bad listening line: $(head -1 "$tmp/out")"
}

# stop: SIGTERM through GLib; eddy shuts down; exit status 0.
stop() {
  kill -TERM "$pid" || fail "gone before SIGTERM"
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1)); [ $i -le 100 ] || fail "ignored SIGTERM"; sleep 0.1
  done
  wait "$pid"
  status=$?
  pid=
  [ $status -eq 0 ] || fail "exited with $status"
}

start
# --- echoes -------------------------------------------------------------------
py "
import socket
s = socket.create_connection(('127.0.0.1', $port), timeout=10)
s.sendall(b'hello glib\n')
assert s.recv(100) == b'hello glib\n'
big = b'x' * (4 << 20) + b'\n'
s.sendall(big)
got = b''
while len(got) < len(big):
    chunk = s.recv(1 << 20)
    assert chunk, 'closed early'
    got += chunk
assert got == big, 'large line differs'
" || fail "python echo client"
"$CLIENT" "$port" 10000 100 || fail "C client, many short lines"
"$CLIENT" "$port" 3 1000000 || fail "C client, long lines"
timeout 90 python3 "${srcdir:-.}/tests/half_close_load.py" "$port" 200 7 ||
  fail "concurrent half-closing clients"

stop

# --- eddy's timers under GLib: --idle 1 ---------------------------------------
# A separate server: under the load above, an idle limit could cut clients
# that were merely slow.
start --idle 1
py "
import socket, time
# A client that talks every 0.2 s stays connected past the idle time.
s = socket.create_connection(('127.0.0.1', $port), timeout=10)
for i in range(10):
    s.sendall(b'tick %d\\n' % i)
    assert s.recv(100) == b'tick %d\\n' % i, 'active client dropped'
    time.sleep(0.2)
s.close()
# A silent one is closed after about 1 s: not before, and not much later
# (GLib must wake up for eddy's timer, with nothing else happening).
s = socket.create_connection(('127.0.0.1', $port), timeout=10)
t0 = time.monotonic()
assert s.recv(100) == b'', 'silent client got data'
dt = time.monotonic() - t0
assert 0.95 <= dt < 5.0, 'silent client closed after %.3f s' % dt
" || fail "idle timeout"
stop
echo "glib-echo: echoes, load, idle timer, SIGTERM: ok"
exit 0
