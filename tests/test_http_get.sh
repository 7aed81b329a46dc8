#!/bin/sh
# examples/http-get against a small Python HTTP server on 127.0.0.1 (port 0):
# a binary body with and without Content-Length (compared with cmp), a 404,
# a refused port, bad URLs, https, and a listener that never answers.
# Run from the build directory (make check); skipped without python3.
set -u

command -v python3 >/dev/null 2>&1 || { echo "skip: no python3"; exit 77; }
HTTP_GET=./examples/http-get
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
import http.server, os, socket, sys

body = open(sys.argv[1], "rb").read()

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
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write("%d %d %d\n" % (server.server_address[1],
                            hang.getsockname()[1], refused.getsockname()[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
PY

# 300 kB of random bytes: NULs, CRLFs, everything.
head -c 300000 /dev/urandom > "$tmp/body.bin"
timeout 120 python3 "$tmp/server.py" "$tmp/body.bin" "$tmp/ports" &
server_pid=$!
i=0
while [ ! -s "$tmp/ports" ]; do
  i=$((i + 1))
  [ $i -le 100 ] || { echo "FAIL: the test server did not start"; exit 1; }
  sleep 0.1
done
read -r port hang_port refused_port < "$tmp/ports"

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
run "https" 2 --cafile /dev/null --insecure "https://127.0.0.1:$port/" &&
  expect_reason https "https is not supported yet"
run "usage" 2

[ "$failures" -eq 0 ] || exit 1
echo "all http-get checks passed"
