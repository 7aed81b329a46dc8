#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/echo-server and examples/http-hello driven by real clients:
# Python's socket module, a raw C client (tests/helpers/line-client), curl;
# echo-server over TLS (--certfile/--keyfile, the certificates made by
# tests/gen-certs.sh) with `openssl s_client -quiet` and Python's ssl.
# Everything listens on 127.0.0.1 port 0, is bounded by `timeout`, and is
# stopped by its PID. Run from the build directory (make check); skipped
# without python3 or curl; the TLS part is skipped without openssl or
# Python's ssl module.
set -u

command -v python3 >/dev/null 2>&1 || { echo "skip: no python3"; exit 77; }
command -v curl >/dev/null 2>&1 || { echo "skip: no curl"; exit 77; }
ECHO=./examples/echo-server
HELLO=./examples/http-hello
CLIENT=./tests/helpers/line-client
for b in "$ECHO" "$HELLO" "$CLIENT"; do
  [ -x "$b" ] || { echo "FAIL: $b not built"; exit 1; }
done

tmp=$(mktemp -d) || exit 1
pids=
cleanup() {
  for p in $pids; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*"; exit 1; }

# start NAME ARGS...: runs an example in the background; sets $pid and
# $port from its first "listening on" line.
start() {
  name=$1; shift
  # timeout passes our SIGTERM on to the example alone (--foreground: not to
  # its whole group as well) and exits with the example's status.
  timeout --foreground 60 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pid=$!
  pids="$pids $pid"
  i=0
  while ! grep -q '^listening on ' "$tmp/$name.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 100 ] || fail "$name did not print 'listening on'"
    kill -0 "$pid" 2>/dev/null || fail "$name exited: $(cat "$tmp/$name.err")"
    sleep 0.1
  done
  port=$(sed -n '1s/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/$name.out")
  [ -n "$port" ] || fail "$name: bad listening line: $(head -1 "$tmp/$name.out")"
}

# stop NAME: SIGTERM, then expects exit status 0 within 10 s.
stop() {
  kill -TERM "$pid" || fail "$1 is gone before SIGTERM"
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 100 ] || fail "$1 ignored SIGTERM"
    sleep 0.1
  done
  wait "$pid"
  status=$?
  [ $status -eq 0 ] || fail "$1 exited with $status: $(cat "$tmp/$1.err")"
}

py() { timeout 30 python3 -c "$@"; }

# --- command line -----------------------------------------------------------
"$ECHO" --port >/dev/null 2>&1; [ $? -eq 2 ] || fail "missing value: not exit 2"
"$ECHO" --port 70000 >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad port: not exit 2"
"$ECHO" --bogus 1 >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad option: not exit 2"
"$HELLO" --certfile x >/dev/null 2>&1; [ $? -eq 2 ] || fail "http-hello took --certfile"
"$ECHO" --keyfile k.pem >/dev/null 2>&1; [ $? -eq 2 ] || fail "--keyfile alone: not exit 2"
"$ECHO" --certfile "$tmp/missing.pem" --keyfile k.pem 2>"$tmp/tls.err"; [ $? -eq 1 ] || fail "TLS: missing certfile not exit 1"
grep -q "missing.pem" "$tmp/tls.err" || fail "TLS: no clear message: $(cat "$tmp/tls.err")"
"$ECHO" --help | grep -q usage || fail "--help"

# --- echo-server, one process -----------------------------------------------
start echo "$ECHO" --address 127.0.0.1 --port 0
grep -q "^listening on 127.0.0.1:$port\$" "$tmp/echo.out" || fail "listening line"
py "
import socket
s = socket.create_connection(('127.0.0.1', $port), timeout=10)
s.sendall(b'hello\n')
assert s.recv(100) == b'hello\n'
lines = b''.join(b'line %d\n' % i for i in range(2000))
s.sendall(lines)
got = b''
while len(got) < len(lines):
    chunk = s.recv(65536)
    assert chunk, 'closed early'
    got += chunk
assert got == lines, 'many lines differ'
big = b'x' * (4 << 20) + b'\n'
s.sendall(big)
got = b''
while len(got) < len(big):
    got += s.recv(1 << 20)
assert got == big, 'large line differs'
s.sendall(b'no newline yet')
s.shutdown(socket.SHUT_WR)
assert s.recv(100) == b'', 'partial line echoed'
" || fail "python echo client"
"$CLIENT" "$port" 10000 100 || fail "C client, many short lines"
"$CLIENT" "$port" 3 1000000 || fail "C client, long lines"
# Half-close (nc -N): the answer to every line comes back after the FIN.
py "
import socket
s = socket.create_connection(('127.0.0.1', $port), timeout=10)
lines = b''.join(b'request %d\n' % i for i in range(500))
s.sendall(lines)
s.shutdown(socket.SHUT_WR)
got = b''
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
assert got == lines, 'half-closed client: %d of %d bytes back' % (len(got), len(lines))
" || fail "python half-closing client"
# Under load: many concurrent clients sending random lines in random
# chunks, every other one half-closing; every byte checked. As many as the
# descriptor limit allows (2,000 in CI), each side needing one per client.
ulimit -n 8192 2>/dev/null || true
clients=$(( ($(ulimit -n) - 100) / 2 ))
[ $clients -le 2000 ] || clients=2000
timeout 90 python3 "${srcdir:-.}/tests/half_close_load.py" "$port" "$clients" 12 ||
  fail "half-closing clients under load"
stop echo

# --- echo-server, two processes ---------------------------------------------
start echo2 "$ECHO" --address 127.0.0.1 --port 0 --processes 2
supervisor=$(pgrep -P "$pid")
i=0
while [ "$(pgrep -P "$supervisor" | wc -l)" -lt 2 ]; do
  i=$((i + 1)); [ $i -le 100 ] || fail "no two workers"; sleep 0.1
done
workers=$(pgrep -P "$supervisor")
for n in 1 2 3 4; do "$CLIENT" "$port" 100 10 || fail "worker echo"; done
stop echo2
for w in $supervisor $workers; do
  i=0
  while kill -0 "$w" 2>/dev/null; do
    i=$((i + 1)); [ $i -le 100 ] || fail "worker $w outlived the supervisor"; sleep 0.1
  done
done

# --- echo-server over TLS -----------------------------------------------------
certs=./tests/certs
if ! command -v openssl >/dev/null 2>&1 || ! python3 -c 'import ssl' 2>/dev/null ||
   [ ! -f "$certs/server.pem" ]; then
  echo "skip: echo-server over TLS (no openssl, Python ssl or test certificates)"
else
  start echo_tls "$ECHO" --address 127.0.0.1 --port 0 \
    --certfile "$certs/server.pem" --keyfile "$certs/server.key"
  py "
import subprocess
# openssl s_client -quiet: verifies the chain and the name, prints only data.
p = subprocess.Popen(['openssl', 's_client', '-connect', '127.0.0.1:$port',
                      '-servername', 'foo.example.com', '-verify_hostname',
                      'foo.example.com', '-CAfile', '$certs/ca.pem',
                      '-verify_return_error', '-quiet'],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL)
try:
    p.stdin.write(b'hello over tls\n'); p.stdin.flush()
    assert p.stdout.readline() == b'hello over tls\n', 's_client: no echo'
    p.stdin.write(b'second line\n'); p.stdin.flush()
    assert p.stdout.readline() == b'second line\n', 's_client: no second echo'
finally:
    p.kill()
    p.wait()
" || fail "openssl s_client against echo-server --certfile"
  py "
import socket, ssl
ctx = ssl.create_default_context(cafile='$certs/ca.pem')
def tls():
    raw = socket.create_connection(('127.0.0.1', $port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname='foo.example.com')
s = tls()
assert s.version() in ('TLSv1.2', 'TLSv1.3'), s.version()
s.sendall(b'hello\n')
assert s.recv(100) == b'hello\n'
lines = b''.join(b'line %d\n' % i for i in range(2000))
big = b'y' * (2 << 20) + b'\n'
s.sendall(lines + big)
got = b''
while len(got) < len(lines) + len(big):
    chunk = s.recv(1 << 20)
    assert chunk, 'closed early'
    got += chunk
assert got == lines + big, 'TLS echo differs'
s.close()
# Plain text to the TLS port: that connection fails, the server goes on.
p = socket.create_connection(('127.0.0.1', $port), timeout=10)
p.sendall(b'GET / HTTP/1.0\r\n\r\n')
try:
    while p.recv(4096):
        pass
except ConnectionResetError:
    pass
p.close()
# A client that leaves in the middle of its handshake.
p = socket.create_connection(('127.0.0.1', $port), timeout=10)
p.sendall(b'\x16\x03\x01\x02\x00\x01')
p.close()
# A client that does not trust the server's CA is refused by its own check.
try:
    ssl.create_default_context().wrap_socket(
        socket.create_connection(('127.0.0.1', $port), timeout=10),
        server_hostname='foo.example.com')
    raise SystemExit('an untrusted server was accepted')
except ssl.SSLCertVerificationError:
    pass
s = tls()
s.sendall(b'still here\n')
assert s.recv(100) == b'still here\n'
s.close()
" || fail "python ssl client against echo-server --certfile"
  # The client's close_notify ends its side; every line still comes back.
  timeout 30 python3 "${srcdir:-.}/tests/tls_half_close.py" "$port" "$certs" ||
    fail "TLS client ending its side with close_notify"
  stop echo_tls
fi

# --- http-hello ---------------------------------------------------------------
start hello "$HELLO" --address 127.0.0.1 --port 0
url="http://127.0.0.1:$port/"
body=$(timeout 10 curl -s "$url") || fail "curl"
[ "$body" = "Hello, world!" ] || fail "body: '$body'"
# Two requests, one connection.
conns=$(timeout 10 curl -s -o /dev/null -o /dev/null --write-out '%{num_connects}\n' "$url" "$url")
[ "$(echo $conns)" = "1 0" ] || fail "keep-alive: num_connects '$conns'"
# HTTP/1.0 closes; HTTP/1.0 with keep-alive and HTTP/1.1 do not; close is honoured.
py "
import socket
def exchange(request, expect_close):
    s = socket.create_connection(('127.0.0.1', $port), timeout=10)
    s.sendall(request)
    data = b''
    while b'Hello, world!' not in data:
        chunk = s.recv(4096)
        assert chunk, 'closed before the response'
        data += chunk
    assert data.startswith(b'HTTP/1.1 200 OK\r\n'), data
    assert b'Content-Length: 13\r\n' in data, data
    s.settimeout(0.5)
    try:
        closed = s.recv(1) == b''
    except socket.timeout:
        closed = False
    assert closed == expect_close, (request, closed)
    s.close()
exchange(b'GET / HTTP/1.0\r\nHost: x\r\n\r\n', True)
exchange(b'GET / HTTP/1.0\r\ncOnNeCtIoN: Keep-Alive\r\n\r\n', False)
exchange(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n', False)
exchange(b'GET / HTTP/1.1\r\nConnection: close\r\n\r\n', True)
# Token lists, any case; a request body (not read) closes, an empty one not.
exchange(b'GET / HTTP/1.1\r\nHost: x\r\nconnection: Upgrade , CLOSE\r\n\r\n', True)
exchange(b'GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\n\r\n', False)
exchange(b'GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n', False)
exchange(b'POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello', True)
exchange(b'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', True)
exchange(b'GET / HTTP/2.0\r\n\r\n', True)
exchange(b'GET / HTTP/1.1\r\nX-Connection: close\r\nConnectionX: close\r\n\r\n', False)
# Pipelined requests are answered in order.
s = socket.create_connection(('127.0.0.1', $port), timeout=10)
s.sendall(b'GET /a HTTP/1.1\r\n\r\n' * 3)
data = b''
while data.count(b'Hello, world!') < 3:
    data += s.recv(4096)
s.close()
# ... and a pipelined close ends the connection after its own answer.
s = socket.create_connection(('127.0.0.1', $port), timeout=10)
s.sendall(b'GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'
          b'GET /b HTTP/1.1\r\nConnection: close\r\n\r\n'
          b'GET /c HTTP/1.1\r\n\r\n')
data = b''
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
s.close()
assert data.count(b'Hello, world!') == 2, data
assert data.count(b'Connection: keep-alive\r\n') == 1, data
assert data.endswith(b'Connection: close\r\n\r\nHello, world!'), data
" || fail "python http client"
stop hello

echo "PASS"
exit 0
