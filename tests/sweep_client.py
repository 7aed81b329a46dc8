#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tests/sweep_client.py - one verifying echo client for tests/alloc-sweep.sh.

    sweep_client.py PORT [--tls] [--seed N]

Sends numbered lines (about 17 KB in all, in 4 KiB writes) to an echo server
on 127.0.0.1:PORT while reading the echo back slowly, a few hundred bytes
at a time, so the server's replies wait for the kernel now and then. What
comes back must be an exact prefix of what was sent. Prints one word and
exits: "ok" (everything came back, 0), "cut" (the server ended the
connection early, after a prefix, 0), "stall" (nothing for 5 s while the
connection stayed open, 1), "corrupt" (bytes that were not sent, 1).
"""
import random
import socket
import ssl
import sys
import time

STALL = 5.0


def main():
    port = int(sys.argv[1])
    tls = "--tls" in sys.argv
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 5
    rng = random.Random(seed)
    data = b"".join(b"%d " % i + bytes(rng.choice(b"abcdefghij") for _ in range(rng.randint(1, 1500)))
                    + b"\n" for i in range(25))
    sock = socket.create_connection(("127.0.0.1", port), timeout=STALL)
    try:
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock)
    except OSError:
        print("cut")  # the handshake failed: the server gave up on us
        return 0
    sock.setblocking(False)
    got = bytearray()
    off = 0
    last = time.monotonic()
    verdict = "ok"
    while len(got) < len(data):
        if off < len(data):
            try:
                off += sock.send(data[off:off + 4096])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                pass
            except OSError:
                verdict = "cut"
                break
        try:
            chunk = sock.recv(rng.randint(1, 512))
            if not chunk:
                verdict = "cut"
                break
            got += chunk
            last = time.monotonic()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            pass
        except OSError:
            verdict = "cut"
            break
        if time.monotonic() - last > STALL:
            verdict = "stall"
            break
        time.sleep(0.002)
    sock.close()
    if not data.startswith(bytes(got)):
        verdict = "corrupt"
    print("%s %d of %d bytes back, %d sent" % (verdict, len(got), len(data), off))
    return 1 if verdict in ("stall", "corrupt") else 0


if __name__ == "__main__":
    sys.exit(main())
