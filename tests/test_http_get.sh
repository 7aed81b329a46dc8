#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/http-get against a small Python HTTP server on 127.0.0.1 (port 0):
# a binary body with and without Content-Length (compared with cmp), a 404,
# a refused port, bad URLs, and a listener that never answers; then https
# against the same server wrapped in Python's ssl (the certificates made by
# tests/gen-certs.sh): verified with --cafile, refused for an unknown CA, a
# self-signed certificate or the wrong name ("certificate verify failed"),
# accepted with --insecure, and a handshake that never gets an answer.
# Run from the build directory (make check); skipped without python3; the
# https part is skipped without Python's ssl module or the certificates.
set -u

command -v python3 >/dev/null 2>&1 || { echo "skip: no python3"; exit 77; }
# HTTP_GET: the client to test (tests/test_http_get_coro.sh sets its twin).
HTTP_GET=${HTTP_GET:-./examples/http-get}
[ -x "$HTTP_GET" ] || { echo "FAIL: $HTTP_GET not built"; exit 1; }

tmp=$(mktemp -d) || exit 1
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cat > "$tmp/server.py" <<'PY'
import http.server, os, socket, sys, threading

body = open(sys.argv[1], "rb").read()
certs = sys.argv[3] if len(sys.argv) > 3 else None

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request, then close

    def log_message(self, *args):
        pass

    def do_GET(self):
        if "Host" not in self.headers:
            self.send_error(400, "No Host")
        elif self.path == "/file.bin":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/stream.bin":  # no Content-Length: until close
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/empty":
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404, "Not Found")

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
hang = socket.socket()          # accepts nothing, says nothing
hang.bind(("127.0.0.1", 0))
hang.listen(8)
refused = socket.socket()       # bound, not listening: refuses
refused.bind(("127.0.0.1", 0))
ports = [server.server_address[1], hang.getsockname()[1],
         refused.getsockname()[1]]
# https: the same handler behind TLS, one server per certificate: localhost
# (names 127.0.0.1), self (self-signed foo.example.com), server (CA-signed
# foo.example.com: the wrong name for 127.0.0.1).
if certs is not None:
    import ssl
    for name in ("localhost", "self", "server"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(certs, name + ".pem"),
                            os.path.join(certs, name + ".key"))
        tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tls.daemon_threads = True
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        threading.Thread(target=tls.serve_forever, daemon=True).start()
        ports.append(tls.server_address[1])
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(" ".join(map(str, ports)) + "\n")
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
PY

# 300 kB of random bytes: NULs, CRLFs, everything.
head -c 300000 /dev/urandom > "$tmp/body.bin"
certs=./tests/certs
if python3 -c 'import ssl' 2>/dev/null && [ -f "$certs/localhost.pem" ]; then
  tls=yes
else
  tls=no
  certs=
fi
timeout 120 python3 "$tmp/server.py" "$tmp/body.bin" "$tmp/ports" $certs &
server_pid=$!
i=0
while [ ! -s "$tmp/ports" ]; do
  i=$((i + 1))
  [ $i -le 100 ] || { echo "FAIL: the test server did not start"; exit 1; }
  sleep 0.1
done
read -r port hang_port refused_port tls_port self_port foo_port < "$tmp/ports"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# run NAME EXPECTED_STATUS ARGS...: output in $tmp/out, errors in $tmp/err
run() {
  name=$1 expected=$2
  shift 2
  timeout 20 "$HTTP_GET" "$@" > "$tmp/out" 2> "$tmp/err"
  status=$?
  if [ "$status" -ne "$expected" ]; then
    fail "$name: exit $status, expected $expected ($(cat "$tmp/err"))"
    return 1
  fi
  echo "ok: $name"
}

expect_reason() {
  grep -q "$2" "$tmp/err" || fail "$1: stderr is '$(cat "$tmp/err")', expected '$2'"
  [ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "$1: expected one line on stderr"
}

run "body with Content-Length" 0 "http://127.0.0.1:$port/file.bin" &&
  { cmp -s "$tmp/out" "$tmp/body.bin" || fail "body differs"; }
run "body until close" 0 --timeout 10 "http://127.0.0.1:$port/stream.bin" &&
  { cmp -s "$tmp/out" "$tmp/body.bin" || fail "streamed body differs"; }
run "empty body" 0 "http://127.0.0.1:$port/empty" &&
  { [ ! -s "$tmp/out" ] || fail "empty body is not empty"; }
run "404" 1 "http://127.0.0.1:$port/missing" &&
  expect_reason 404 "HTTP 404 Not Found"
run "refused" 1 "http://127.0.0.1:$refused_port/" &&
  expect_reason refused "connection refused"
run "timeout" 1 --timeout 0.5 "http://127.0.0.1:$hang_port/" &&
  expect_reason timeout "timed out"
for url in "ftp://127.0.0.1/" "http://" "http://127.0.0.1:99999/" \
           "http://127.0.0.1:x/" "http://a b/" "http://[::1/"; do
  run "bad URL $url" 2 "$url" && expect_reason "bad URL" "bad URL"
done
run "usage" 2

# --- https --------------------------------------------------------------------
if [ "$tls" = no ]; then
  echo "skip: https (no Python ssl module or no test certificates)"
else
  run "https, verified" 0 --cafile "$certs/ca.pem" "https://127.0.0.1:$tls_port/file.bin" &&
    { cmp -s "$tmp/out" "$tmp/body.bin" || fail "https body differs"; }
  run "https by name" 0 --cafile "$certs/ca.pem" --timeout 10 \
    "https://localhost:$tls_port/stream.bin" &&
    { cmp -s "$tmp/out" "$tmp/body.bin" || fail "https streamed body differs"; }
  run "https 404" 1 --cafile "$certs/ca.pem" "https://127.0.0.1:$tls_port/missing" &&
    expect_reason "https 404" "HTTP 404 Not Found"
  # A CA file that does not hold the issuer: an unknown CA.
  run "https, unknown CA" 1 --cafile "$certs/self.pem" "https://127.0.0.1:$tls_port/" &&
    expect_reason "unknown CA" "certificate verify failed"
  run "https, self-signed" 1 --cafile "$certs/ca.pem" "https://127.0.0.1:$self_port/" &&
    expect_reason "self-signed" "certificate verify failed: self-signed certificate"
  run "https, wrong name" 1 --cafile "$certs/ca.pem" "https://127.0.0.1:$foo_port/" &&
    expect_reason "wrong name" "certificate verify failed"
  run "https, system CAs" 1 "https://127.0.0.1:$tls_port/" &&
    expect_reason "system CAs" "certificate verify failed"
  run "https --insecure, self-signed" 0 --insecure "https://127.0.0.1:$self_port/file.bin" &&
    { cmp -s "$tmp/out" "$tmp/body.bin" || fail "--insecure body differs"; }
  run "https --insecure, wrong name" 0 --insecure "https://127.0.0.1:$foo_port/file.bin" &&
    { cmp -s "$tmp/out" "$tmp/body.bin" || fail "--insecure body differs"; }
  run "https, no answer to the hello" 1 --timeout 0.5 --cafile "$certs/ca.pem" \
    "https://127.0.0.1:$hang_port/" && expect_reason "https timeout" "timed out"
  run "https, plain HTTP server" 1 --cafile "$certs/ca.pem" "https://127.0.0.1:$port/" &&
    expect_reason "https to http" "TLS"
  run "https, bad cafile" 1 --cafile "$tmp/missing.pem" "https://127.0.0.1:$tls_port/" &&
    expect_reason "bad cafile" "missing.pem"
fi

[ "$failures" -eq 0 ] || exit 1
echo "all http-get checks passed"
