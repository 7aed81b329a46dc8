#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/peers/asyncio_tls_echo.py - line echo over TLS on asyncio + ssl.

The TLS peer for eddy's TLS echo: asyncio.start_server with an
ssl.SSLContext; readline(), write, drain, repeat. Plain TCP without
--certfile/--keyfile (handy for checking the loadgen).

usage: asyncio_tls_echo.py [--address 127.0.0.1] [--port 0]
                           [--certfile F --keyfile F]
"""
import asyncio
import socket
import ssl

from peer_common import announce, parse_args


async def handle(reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            line = await reader.readline()
            if not line or not line.endswith(b"\n"):
                break
            writer.write(line)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def main():
    args = parse_args("--certfile", "--keyfile")
    ctx = None
    if args.certfile:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.certfile, args.keyfile)
    server = await asyncio.start_server(handle, args.address, args.port,
                                        ssl=ctx, backlog=4096,
                                        limit=1 << 20)
    announce(server.sockets[0])
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
