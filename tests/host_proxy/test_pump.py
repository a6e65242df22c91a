"""The pump alone, between real socket pairs (no proxy, no listener)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from host_proxy.pump import IdleDeadline, Pump


@contextlib.asynccontextmanager
async def pumped(**options):
    """client_end ⇄ [pump.client_side | pump.target_side] ⇄ target_end, over two socketpairs."""
    loop = asyncio.get_running_loop()
    client_end, client_side = socket.socketpair()
    target_side, target_end = socket.socketpair()
    options = {"read_chunk_bytes": 1000, "write_buffer_bytes": 4096, "idle_timeout_seconds": 5, **options}
    pump = Pump(**options)
    await loop.connect_accepted_socket(lambda: pump.target_side, target_side)
    await loop.connect_accepted_socket(lambda: pump.client_side, client_side)
    ends = [await asyncio.open_connection(sock=sock) for sock in (client_end, target_end)]
    try:
        yield pump, ends[0], ends[1]
    finally:
        pump.abort("shutdown")
        await pump.finished
        for _, writer in ends:
            writer.transport.abort()
        await asyncio.sleep(0)


class TestIdleDeadline:
    def test_touch_moves_the_deadline(self):
        deadline = IdleDeadline(10, now=100)
        assert deadline.remaining(105) == 5
        deadline.touch(108)
        assert deadline.remaining(110) == 8
        assert deadline.remaining(120) <= 0


class TestPump:
    async def test_copies_both_ways_counts_and_forwards_half_close(self):
        seen: list[tuple[str, int]] = []
        async with pumped(on_bytes=lambda d, n: seen.append((d, n))) as (pump, (c_reader, c_writer), (t_reader, t_writer)):
            c_writer.write(b"a" * 2500)
            c_writer.write_eof()
            assert await asyncio.wait_for(t_reader.read(), 2) == b"a" * 2500  # the EOF arrives: half-close forwarded
            t_writer.write(b"reply after your EOF")
            t_writer.write_eof()
            assert await asyncio.wait_for(c_reader.read(), 2) == b"reply after your EOF"
            result = await asyncio.wait_for(pump.finished, 2)
        assert (result.bytes_to_target, result.bytes_to_client, result.outcome) == (2500, 20, "closed")
        assert sorted(seen) == [("to_client", 20), ("to_target", 2500)]  # reported to metrics when it ends
        assert len(pump.client_side.get_buffer(-1)) == 1000  # one read is at most read_chunk_bytes

    async def test_idle_timeout_ends_the_pump(self):
        async with pumped(idle_timeout_seconds=0.1) as (pump, (c_reader, _), _target):
            result = await asyncio.wait_for(pump.finished, 2)
            assert await asyncio.wait_for(c_reader.read(), 2) == b""
        assert result.outcome == "idle"

    async def test_reset_of_one_side_aborts_the_other(self):
        async with pumped(idle_timeout_seconds=0) as (pump, (_, c_writer), (_t_reader, t_writer)):
            t_writer.write(b"x" * 100_000)  # unread by the client …
            await asyncio.sleep(0.05)
            c_writer.transport.abort()  # … which then vanishes (the pump sees an EOF first)
            await asyncio.sleep(0.05)
            assert not pump.finished.done()  # a half-closed client may still be receiving
            t_writer.write(b"more")  # sending to the vanished client fails: the whole connection ends
            result = await asyncio.wait_for(pump.finished, 2)
        assert result.outcome == "reset"

    async def test_a_receiver_that_stops_reading_stops_the_sender(self):
        async with pumped(idle_timeout_seconds=0) as (pump, (_, c_writer), (t_reader, _)):
            c_writer.transport.set_write_buffer_limits(high=0)
            for _ in range(100):
                c_writer.write(b"y" * 65536)  # 6.4 MB offered; the target end reads nothing
            await asyncio.sleep(0.3)
            forwarded = pump.totals["to_target"]
            still_queued_at_sender = c_writer.transport.get_write_buffer_size()
            assert forwarded < 2_000_000  # kernel buffers + 4 KiB queue + 1 KB chunks, not 6.4 MB
            assert still_queued_at_sender > 4_000_000  # the rest is waiting at the sender, not in the pump
            received = 0
            while received < 6_553_600:  # then reading resumes and everything arrives
                received += len(await asyncio.wait_for(t_reader.read(1 << 20), 5))

    async def test_abort_settles_at_once(self):
        async with pumped() as (pump, _client, _target):
            pump.abort("shutdown")
            result = await asyncio.wait_for(pump.finished, 1)
        assert result.outcome == "shutdown"
