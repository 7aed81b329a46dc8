#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/soak.py - many concurrent verifying clients, some of them abusive,
against examples/echo-server (plain or TLS) or examples/http-hello.

    soak.py --port PORT --kind echo|http [--tls] [--clients N] [--seconds S]
            [--seed SEED] [--pid PID] [--round ROUND] [--allow-cut]
            [--host 127.0.0.1]

N clients run at once for S seconds; each connects again and again, every
time as one of these, chosen from SEED:

  echo: lines (random lines in random chunks, every echo checked),
        slow reader (a big burst, read back a little at a time),
        half-close (write, shut down the write side, read to the end; not
        over TLS, which asyncio cannot half-close), reset mid-write
        (SO_LINGER 0: an RST while the server is still answering),
        slowloris (a line a byte at a time, then gone), garbage (random
        bytes, every one echoed up to the last newline);
  http: keep-alive requests (every answer parsed and checked), pipelined
        requests, HTTP/1.0, slowloris, garbage (the server must answer or
        close, nothing else), reset mid-request.

Every byte that comes back is checked. With --allow-cut (allocation
faults injected into the server) a connection may end early, with a reset
or EOF, but what came back before must be an exact prefix of what was due:
echoes byte for byte, HTTP answers whole and correct up to the cut.

With --pid, the server's open fds (/proc/PID/fd) and RSS are sampled after
a warm-up round (2 s at full load, so the allocator's working set exists)
and after every round of ROUND seconds (default 10), once every client is
gone: the fd count must come back to the first sample's (within 10 s), and
the last RSS may not exceed the highest of the first half of the samples by
more than 25% + 8 MiB (a high-water mark is fine, steady growth is not).
A step that makes no progress for 30 s is a failure (a stalled server).

Exits 0 when all is well, 1 with up to 20 lines of failures otherwise.
Bounded: each round gives up 120 s after its end.
"""
import argparse
import asyncio
import os
import random
import resource
import socket
import ssl
import struct
import sys
import time

from echo_client import send_in_chunks

HELLO = b"Hello, world!"
SLICE = 30.0  # longest wait for any one step: past that, the server stalled


class Stats:
    def __init__(self):
        self.conns = 0
        self.cut = 0
        self.bytes = 0
        self.failures = []
        self.kinds = {}

    def fail(self, msg):
        if len(self.failures) < 1000:
            self.failures.append(msg)


def rand_line(rng, maxlen):
    return bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 -")
                 for _ in range(rng.randint(0, maxlen))) + b"\n"


class Client:
    def __init__(self, args, stats, rng, ident):
        self.args, self.stats, self.rng, self.ident = args, stats, rng, ident

    async def connect(self):
        ctx = None
        if self.args.tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return await asyncio.wait_for(asyncio.open_connection(
            self.args.host, self.args.port, ssl=ctx, limit=1 << 22), SLICE)

    def cut_ok(self, what, got, due, err):
        """A connection ended after @got of @due: fine if a prefix under
        --allow-cut, else a failure."""
        if got == due:
            return
        if not due.startswith(got):
            self.stats.fail("%s: %d of %d bytes back, and they differ at %d%s" % (
                what, len(got), len(due), next(
                    (i for i in range(min(len(got), len(due))) if got[i] != due[i]),
                    min(len(got), len(due))), " (%s)" % err if err else ""))
        elif self.args.allow_cut:
            self.stats.cut += 1
        else:
            self.stats.fail("%s: ended after %d of %d bytes%s" % (
                what, len(got), len(due), " (%s)" % err if err else ""))

    @staticmethod
    def reset(writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def read_n(self, reader, n, got):
        """Reads until @got holds @n bytes or the connection ends."""
        while len(got) < n:
            chunk = await asyncio.wait_for(reader.read(n - len(got)), SLICE)
            if not chunk:
                break
            got += chunk

    # --- echo behaviours ---------------------------------------------------
    async def echo_lines(self, reader, writer, slow=False, half_close=False, garbage=False):
        rng = self.rng
        if garbage:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
            # The echo server answers whole lines; the tail after the last
            # newline comes back only at a half-close.
            due = data[:data.rfind(b"\n") + 1]
        else:
            data = b"".join(rand_line(rng, 200 if not slow else 2000)
                            for _ in range(rng.randint(1, 30 if not slow else 50)))
            due = data
        if half_close:
            due = data
        got = bytearray()
        err = None

        sender = asyncio.ensure_future(
            send_in_chunks(writer, data, rng, 4096, 0.1, half_close))
        try:
            if slow:
                while len(got) < len(due):
                    await asyncio.sleep(0.005)
                    chunk = await asyncio.wait_for(reader.read(rng.randint(1, 512)), SLICE)
                    if not chunk:
                        break
                    got += chunk
            elif half_close:
                while True:
                    chunk = await asyncio.wait_for(reader.read(65536), SLICE)
                    if not chunk:
                        break
                    got += chunk
            else:
                await self.read_n(reader, len(due), got)
            await asyncio.wait_for(sender, SLICE)
        except asyncio.TimeoutError:
            sender.cancel()
            self.stats.fail("echo: no progress for %.0f s after %d of %d bytes" % (
                SLICE, len(got), len(due)))
            return
        except (OSError, asyncio.IncompleteReadError) as e:
            err = repr(e)
            sender.cancel()
        self.stats.bytes += len(got)
        self.cut_ok("echo", bytes(got), due, err)

    async def echo_reset(self, reader, writer):
        data = b"".join(rand_line(self.rng, 1000) for _ in range(self.rng.randint(20, 200)))
        writer.write(data[:self.rng.randint(1, len(data))])
        try:
            # Part of an echo, if any comes soon (what was sent may hold no
            # whole line), then the reset while the server is still busy.
            await asyncio.wait_for(reader.read(self.rng.randint(1, 4096)),
                                   self.rng.random() * 0.05)
        except (OSError, asyncio.TimeoutError):
            pass
        self.reset(writer)

    async def slowloris(self, reader, writer):
        for b in b"GET / HTTP/1.1\r\nHost: x\r\n"[:self.rng.randint(1, 20)]:
            writer.write(bytes([b]))
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.close()

    # --- http behaviours ---------------------------------------------------
    async def read_answer(self, reader, keep):
        """One answer: headers then a 13-byte body. Returns what was read
        and whether it was whole and right."""
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), SLICE)
        body = await asyncio.wait_for(reader.readexactly(13), SLICE)
        ok = (head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 13\r\n" in head
              and body == HELLO and ((b"Connection: close" in head) != keep))
        return head + body, ok

    async def http_requests(self, reader, writer, pipelined=False, http10=False):
        n = self.rng.randint(1, 20)
        reqs = []
        for i in range(n):
            last = i == n - 1 and self.rng.random() < 0.5
            if http10:
                r = b"GET /%d HTTP/1.0\r\n%s\r\n" % (i, b"" if last else b"Connection: keep-alive\r\n")
            else:
                r = b"GET /%d HTTP/1.1\r\nHost: x\r\n%s\r\n" % (i, b"Connection: close\r\n" if last else b"")
            reqs.append((r, not last))
        answered = 0
        try:
            if pipelined:
                writer.write(b"".join(r for r, _ in reqs))
            for r, keep in reqs:
                if not pipelined:
                    writer.write(r)
                got, ok = await self.read_answer(reader, keep)
                if not ok:
                    self.stats.fail("http: a wrong answer to request %d: %r" % (answered, got[:200]))
                    return
                answered += 1
                self.stats.bytes += len(got)
            if not reqs[-1][1]:
                rest = await asyncio.wait_for(reader.read(1), SLICE)
                if rest:
                    self.stats.fail("http: bytes after a Connection: close answer")
        except asyncio.TimeoutError:
            self.stats.fail("http: no answer for %.0f s after %d of %d" % (SLICE, answered, n))
        except (asyncio.IncompleteReadError, OSError) as e:
            if self.args.allow_cut:
                self.stats.cut += 1
            else:
                self.stats.fail("http: connection ended after %d of %d answers (%r)" % (
                    answered, n, e))

    async def http_garbage(self, reader, writer):
        junk = bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(1, 2048)))
        writer.write(junk + b"\r\n\r\n")
        try:
            # Whatever it is, the server answers with a whole response (a
            # close one, as it cannot parse the request) or closes.
            data = await asyncio.wait_for(reader.read(1 << 16), SLICE)
            while data and not data.endswith(HELLO):
                more = await asyncio.wait_for(reader.read(1 << 16), SLICE)
                if not more:
                    break
                data += more
            status = b"HTTP/1.1 200 OK\r\n"
            cut_short = self.args.allow_cut and status.startswith(data)
            if data and not data.startswith(status) and not cut_short:
                self.stats.fail("http: garbage got %r" % data[:100])
        except (OSError, asyncio.TimeoutError):
            pass

    async def http_reset(self, reader, writer):
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * self.rng.randint(1, 50) + b"GET /")
        await asyncio.sleep(self.rng.random() * 0.01)
        self.reset(writer)

    async def one(self):
        rng, kind = self.rng, self.args.kind
        if kind == "echo":
            choices = ["lines"] * 6 + ["slow", "reset", "slowloris", "garbage"]
            if not self.args.tls:
                choices += ["half-close"] * 2
        else:
            choices = ["requests"] * 5 + ["pipelined"] * 2 + ["http10", "slowloris",
                                                              "garbage", "reset"]
        what = rng.choice(choices)
        self.stats.kinds[what] = self.stats.kinds.get(what, 0) + 1
        try:
            reader, writer = await self.connect()
        except (OSError, asyncio.TimeoutError) as e:
            if self.args.allow_cut:
                self.stats.cut += 1
            else:
                self.stats.fail("%s: connect: %r" % (what, e))
            return
        self.stats.conns += 1
        try:
            if what == "lines":
                await self.echo_lines(reader, writer)
            elif what == "slow":
                await self.echo_lines(reader, writer, slow=True)
            elif what == "half-close":
                await self.echo_lines(reader, writer, half_close=True)
            elif what == "garbage" and kind == "echo":
                await self.echo_lines(reader, writer, garbage=True)
            elif what == "reset" and kind == "echo":
                await self.echo_reset(reader, writer)
            elif what == "slowloris":
                await self.slowloris(reader, writer)
            elif what == "requests":
                await self.http_requests(reader, writer)
            elif what == "pipelined":
                await self.http_requests(reader, writer, pipelined=True)
            elif what == "http10":
                await self.http_requests(reader, writer, http10=True)
            elif what == "garbage":
                await self.http_garbage(reader, writer)
            elif what == "reset":
                await self.http_reset(reader, writer)
        except OSError as e:
            if what not in ("reset", "slowloris", "garbage") and not self.args.allow_cut:
                self.stats.fail("%s: %r" % (what, e))
        finally:
            writer.transport.abort() if writer.transport.is_closing() else writer.close()

    async def run(self, until, stagger):
        # Spread the first connects: thousands of SYNs at once overflow the
        # listen backlog, and the kernel's retries (1, 3, 7 s) look like stalls.
        await asyncio.sleep(self.rng.random() * stagger)
        while time.monotonic() < until:
            try:
                await self.one()
            except Exception as e:  # a client's bug or an unforeseen end: report it, go on
                self.stats.fail("client %d: %r" % (self.ident, e))


def proc_sample(pid):
    fds = len(os.listdir("/proc/%d/fd" % pid))
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return fds, rss


async def round_(args, stats, seconds, seed):
    """@seconds of load; returns once every client has finished."""
    rng = random.Random(seed)
    until = time.monotonic() + seconds
    clients = [Client(args, stats, random.Random(rng.random()), i) for i in range(args.clients)]
    await asyncio.wait_for(asyncio.gather(*(c.run(until, min(2.0, seconds / 2))
                                            for c in clients)), seconds + 4 * SLICE)


async def settle(pid, want_fds):
    """Waits up to 10 s for the server's fd count to come down to @want_fds."""
    for _ in range(100):
        fds, rss = proc_sample(pid)
        if fds <= want_fds:
            break
        await asyncio.sleep(0.1)
    return proc_sample(pid)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--kind", choices=["echo", "http"], required=True)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--allow-cut", action="store_true")
    ap.add_argument("--round", type=float, default=10,
                    help="seconds between samples of the server's fds and RSS")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.clients + 100 > hard:
        print("soak: %d clients need more fds than the limit (%d)" % (args.clients, hard))
        return 1

    stats = Stats()
    # The run is cut into rounds; between rounds, with every client gone,
    # the server's fds and RSS are sampled. The first sample follows a
    # warm-up round, so the allocator's working set exists; fds must always
    # come back to it. RSS must stop growing: the last sample may not be
    # above the highest of the first half by more than 25% + 8 MiB, which
    # a high-water mark reached early allows and a steady leak does not.
    samples = []
    if args.pid:
        await round_(args, stats, 2, args.seed + 1)
        samples.append(await settle(args.pid, 0))
    start = time.monotonic()
    rounds = max(1, int(args.seconds // args.round))
    status = 0
    for r in range(rounds):
        await round_(args, stats, args.seconds / rounds, args.seed + 1000 * r)
        if args.pid:
            fds, rss = await settle(args.pid, samples[0][0])
            samples.append((fds, rss))
            if fds > samples[0][0]:
                print("round %d: the server holds %d more fds than after the warm-up" % (
                    r, fds - samples[0][0]))
                status = 1
    took = time.monotonic() - start
    for line in stats.failures[:20]:
        print(line)
    if stats.failures:
        status = 1
    if args.pid:
        early = max(rss for _, rss in samples[:max(1, (len(samples) + 1) // 2)])
        last = samples[-1][1]
        print("server pid %d: fds %s; RSS MiB %s" % (
            args.pid, " ".join(str(f) for f, _ in samples),
            " ".join("%.1f" % (m / 2**20) for _, m in samples)))
        if last > early * 1.25 + 8 * 2**20:
            print("the server's RSS kept growing: %.1f MiB, after %.1f early in the run" % (
                last / 2**20, early / 2**20))
            status = 1
    print("%s%s: %d clients, %.0f s, %d connections (%s), %.1f MB checked, %d cut, %d failures" % (
        args.kind, " TLS" if args.tls else "", args.clients, took, stats.conns,
        ", ".join("%s %d" % kv for kv in sorted(stats.kinds.items())),
        stats.bytes / 1e6, stats.cut, len(stats.failures)))
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
