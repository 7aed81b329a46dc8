#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A TLS peer for tests/tls_peers.c, on Python's ssl module.

  tls_peer.py server --cert C --key K [--cafile CA] [--max-tls 1.2] [--alpn P]...
      Listens on 127.0.0.1 port 0 and prints "PORT <n>". Accepts one
      connection, prints "HANDSHAKE <version> <alpn> <peer CN>" (or "ERR ..."
      and exits 1), echoes everything until the peer's close_notify, answers
      it with its own (unwrap) and exits 0.

  tls_peer.py client --port N --host H --cafile CA --size N [--cert C --key K]
                     [--max-tls 1.2] [--alpn P]... [--unwrap]
      Connects, prints "HANDSHAKE ...", sends N bytes of the test pattern
      (byte i is i % 251), reads N bytes back and checks them, prints "OK"
      and exits 0; any failure prints "ERR <reason>" and exits 1. With
      --unwrap it then ends TLS with unwrap() (close_notify, TCP left open;
      unwrap waits for the peer's close_notify) and wants the peer's FIN
      next before printing "OK".
"""
import argparse
import socket
import ssl
import sys


def pattern(n):
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


def say(*words):
    print(*words, flush=True)


def describe(tls):
    cert = tls.getpeercert()
    cn = "-"
    if cert:
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cn = value.replace(" ", "_")
    say("HANDSHAKE", tls.version(), tls.selected_alpn_protocol() or "-", cn)


def configure(ctx, args):
    if args.max_tls == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.alpn:
        ctx.set_alpn_protocols(args.alpn)


def server(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.cafile:
        ctx.load_verify_locations(args.cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    configure(ctx, args)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    say("PORT", ls.getsockname()[1])
    conn, _ = ls.accept()
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        say("ERR", e)
        return 1
    describe(tls)
    while True:
        data = tls.recv(65536)
        if not data:
            break
        tls.sendall(data)
    tls.unwrap()  # our close_notify in answer to the peer's
    conn.close()
    return 0


def client(args):
    ctx = ssl.create_default_context(cafile=args.cafile)
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    configure(ctx, args)
    sock = socket.create_connection(("127.0.0.1", args.port))
    try:
        tls = ctx.wrap_socket(sock, server_hostname=args.host)
        describe(tls)
        data = pattern(args.size)
        tls.sendall(data)
        got = bytearray()
        while len(got) < args.size:
            chunk = tls.recv(65536)
            if not chunk:
                break
            got += chunk
    except (ssl.SSLError, OSError) as e:
        say("ERR", e)
        return 1
    if bytes(got) != data:
        say("ERR", "echo differs: got %d of %d bytes" % (len(got), args.size))
        return 1
    if args.unwrap:
        try:
            plain = tls.unwrap()
            rest = plain.recv(1)
        except (ssl.SSLError, OSError) as e:
            say("ERR", "unwrap:", e)
            return 1
        if rest:
            say("ERR", "data after close_notify: %r" % rest)
            return 1
        plain.close()
        say("OK")
        return 0
    say("OK")
    tls.close()
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["server", "client"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--cafile")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--max-tls", dest="max_tls")
    p.add_argument("--alpn", action="append")
    p.add_argument("--unwrap", action="store_true")
    args = p.parse_args()
    return server(args) if args.mode == "server" else client(args)


if __name__ == "__main__":
    sys.exit(main())
