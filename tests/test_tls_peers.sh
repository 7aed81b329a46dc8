#!/bin/sh
# SPDX-License-Identifier: MIT
# TLS streams against real peers: openssl s_server / s_client and Python's
# ssl module (tests/tls_peers.c, driven through tests/test_tls). Skipped
# (77) when a tool is missing. Run from the build directory (make check).
set -u

for tool in openssl python3 timeout; do
  command -v "$tool" >/dev/null 2>&1 || { echo "skip: no $tool"; exit 77; }
done
python3 -c 'import ssl' 2>/dev/null || { echo "skip: python3 has no ssl module"; exit 77; }
[ -x ./tests/test_tls ] || { echo "FAIL: ./tests/test_tls not built"; exit 1; }

EDDY_TLS_PEERS=1 EDDY_TLS_PEER_PY="${srcdir:-.}/tests/tls_peer.py" CK_RUN_SUITE=tls_peers \
  exec ./tests/test_tls
