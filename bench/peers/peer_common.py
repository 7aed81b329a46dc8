# SPDX-License-Identifier: MIT
"""bench/peers/peer_common.py - shared by the Python peer servers: the
command line (--address, --port, extra options) and running a Tornado
server on 127.0.0.1 with the "listening on ADDR:PORT" line the harness
reads."""
import argparse
import asyncio
import socket


def parse_args(*extra):
    """--address (default 127.0.0.1), --port (default 0), plus each extra
    option name given (e.g. "--certfile"), all strings defaulting to None."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    for name in extra:
        ap.add_argument(name)
    return ap.parse_args()


def announce(sock):
    host, port = sock.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)


async def serve_tornado(server):
    """Binds (IPv4, backlog 4096), starts @server, announces, runs forever."""
    from tornado.netutil import bind_sockets
    args = parse_args()
    socks = bind_sockets(args.port, args.address, family=socket.AF_INET,
                         backlog=4096)
    server.add_sockets(socks)
    announce(socks[0])
    await asyncio.Event().wait()
