#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/half_close_load.py - many verifying echo clients, half of them
half-closing.

    half_close_load.py PORT CLIENTS SEED [--unix PATH] [--allow-cut]

CLIENTS concurrent connections to an echo server on 127.0.0.1:PORT (or the
UNIX socket PATH). Each sends a random number of random lines in random
chunks while it reads; every other client then shuts down its write side
(as `nc -N` does) and reads until the server closes, the others read until
every echo is back and close. Every byte of every echo is checked. Exits 0
when all is well, 1 with a line per failing client otherwise. Bounded: the
whole run gives up after 60 s. With --allow-cut (make check-faults, with
allocation faults injected into the server) a connection may end early,
with EOF or a reset, as long as what came back is a prefix of what was sent.
"""
import asyncio
import random
import socket
import sys

from echo_client import send_in_chunks


async def client(i, rng, connect, allow_cut):
    reader, writer = await connect()
    nlines = rng.randint(1, 40)
    lines = b"".join(
        bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ")
              for _ in range(rng.randint(0, 300))) + b"\n"
        for _ in range(nlines))
    half_close = i % 2 == 0

    sender = asyncio.ensure_future(
        send_in_chunks(writer, lines, rng, 2048, 0.3, half_close))
    got = bytearray()
    error = None
    try:
        # Half-closing, the server must send everything back, then close.
        while half_close or len(got) < len(lines):
            chunk = await reader.read(65536)
            if not chunk:
                break
            got += chunk
        await sender
    except OSError as e:  # a reset, or write_eof on a connection already gone
        if not allow_cut:
            raise
        sender.cancel()
        error = e
    writer.close()
    if bytes(got) != lines:
        if allow_cut and lines.startswith(bytes(got)):
            return None
        kind = "half-closing" if half_close else "closing"
        return "client %d (%s): sent %d bytes in %d lines, got %d back%s%s" % (
            i, kind, len(lines), nlines, len(got),
            "" if lines.startswith(bytes(got)) else " (different bytes)",
            " (%r)" % error if error else "")
    return None


async def main():
    port, clients, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    path = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--unix" else None
    allow_cut = "--allow-cut" in sys.argv[4:]

    def connect():
        if path:
            return asyncio.open_unix_connection(path)
        return asyncio.open_connection("127.0.0.1", port, limit=1 << 20)

    rng = random.Random(seed)
    # Each client gets its own generator, so the run is the same whatever
    # the scheduling.
    tasks = [client(i, random.Random(rng.random()), connect, allow_cut)
             for i in range(clients)]
    results = await asyncio.wait_for(
        asyncio.gather(*tasks, return_exceptions=True), 60)
    bad = [r if isinstance(r, str) else "client %d: %r" % (i, r)
           for i, r in enumerate(results) if r is not None]
    for line in bad[:20]:
        print(line)
    if bad:
        print("%d of %d clients lost data" % (len(bad), clients))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
