# SPDX-License-Identifier: MIT
"""tests/echo_client.py - what the verifying echo clients share
(tests/half_close_load.py, tests/soak.py)."""
import asyncio


async def send_in_chunks(writer, data, rng, max_chunk, pause_odds, half_close):
    """Writes @data in random chunks of 1..max_chunk bytes, draining after
    each and, with odds @pause_odds, pausing up to 10 ms (so the server
    sees lines split and joined every way); then, if @half_close, ends the
    write side (`nc -N`)."""
    off = 0
    while off < len(data):
        n = rng.randint(1, max_chunk)
        writer.write(data[off:off + n])
        off += n
        await writer.drain()
        if rng.random() < pause_odds:
            await asyncio.sleep(rng.random() * 0.01)
    if half_close:
        writer.write_eof()
