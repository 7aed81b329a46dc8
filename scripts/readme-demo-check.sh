#!/bin/sh
# SPDX-License-Identifier: MIT
# Starts the README's demo (echo-server) on a free port, sends it a line
# and expects the same line back: the last step of README.md's first
# command, checked without holding port 8888. Used by make distcheck.
#   readme-demo-check.sh PATH-TO-ECHO-SERVER
set -eu
server=$1
command -v python3 >/dev/null || { echo "readme-demo-check: needs python3" >&2; exit 1; }
log=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
"$server" --address 127.0.0.1 --port 0 >"$log" 2>&1 &
pid=$!
python3 - "$log" <<'PY'
import re, socket, sys, time
deadline = time.time() + 10
port = None
while port is None and time.time() < deadline:
    m = re.search(r":(\d+)", open(sys.argv[1]).read())
    if m:
        port = int(m.group(1))
    else:
        time.sleep(0.05)
if port is None:
    sys.exit("readme-demo-check: the server never said its port")
with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
    s.sendall(b"hello eddy\n")
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk:
            break
        got += chunk
if got != b"hello eddy\n":
    sys.exit("readme-demo-check: echoed %r" % got)
print("readme-demo-check: echo-server answered on port %d" % port)
PY
