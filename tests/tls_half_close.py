#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/tls_half_close.py - a TLS client that ends its side and reads on.

    tls_half_close.py PORT CERTDIR

Connects to a TLS echo server on 127.0.0.1:PORT (trusting CERTDIR/ca.pem,
name foo.example.com), sends 300 lines, sends its close_notify (and keeps
the TCP connection open), then reads until the server's own end and checks
that every line came back. Python's ssl objects over memory BIOs, so the
client keeps reading after its close_notify. Exits 0 or fails an assert.
"""
import socket, ssl, sys
port = int(sys.argv[1]); certs = sys.argv[2]
ctx = ssl.create_default_context(cafile=certs + '/ca.pem')
raw = socket.create_connection(('127.0.0.1', port), timeout=10)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, out, server_hostname='foo.example.com')
def flush():
    data = out.read()
    if data:
        raw.sendall(data)
def pump():
    data = raw.recv(65536)
    if not data:
        inc.write_eof()
    else:
        inc.write(data)
    return bool(data)
while True:
    try:
        obj.do_handshake(); break
    except ssl.SSLWantReadError:
        flush(); pump()
flush()
lines = b''.join(b'tls line %d\n' % i for i in range(300))
obj.write(lines); flush()
# Our side ends: close_notify, then keep reading every echo.
try:
    obj.unwrap()
except ssl.SSLWantReadError:
    pass
flush()
got = b''
while True:
    try:
        chunk = obj.read(65536)
        if not chunk:
            break
        got += chunk
    except ssl.SSLWantReadError:
        if not pump():
            break
    except ssl.SSLZeroReturnError:
        break
assert got == lines, 'TLS half-close: %d of %d bytes back' % (len(got), len(lines))
