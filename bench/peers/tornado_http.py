#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/peers/tornado_http.py - tornado.web hello: 200 "Hello, world!".

usage: tornado_http.py [--address 127.0.0.1] [--port 0]
"""
import asyncio

import tornado.web
from tornado.httpserver import HTTPServer

from peer_common import serve_tornado


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write("Hello, world!")


async def main():
    app = tornado.web.Application([(r"/.*", Hello)])
    await serve_tornado(HTTPServer(app))


if __name__ == "__main__":
    asyncio.run(main())
