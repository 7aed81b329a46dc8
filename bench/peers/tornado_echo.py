#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/peers/tornado_echo.py - line echo on Tornado's TCPServer.

For each connection: read_until(b"\\n"), write the line back, repeat.
Run with Debian's /usr/bin/python3 (python3-tornado).

usage: tornado_echo.py [--address 127.0.0.1] [--port 0]
"""
import asyncio

from tornado.iostream import StreamClosedError
from tornado.tcpserver import TCPServer

from peer_common import serve_tornado


class EchoServer(TCPServer):
    async def handle_stream(self, stream, address):
        stream.set_nodelay(True)
        try:
            while True:
                line = await stream.read_until(b"\n")
                await stream.write(line)
        except StreamClosedError:
            pass


async def main():
    await serve_tornado(EchoServer())


if __name__ == "__main__":
    asyncio.run(main())
