"""Bidirectional byte copy between a client socket and a target socket, with explicit backpressure.

A ``Pump`` owns two ``PumpSide`` protocols, one per socket. Each side reads into its own fixed buffer of
``read_chunk_bytes`` (asyncio's ``recv_into``), and hands each chunk to the other side's transport.
Backpressure is explicit: when a transport's queue passes ``write_buffer_bytes`` asyncio calls
``pause_writing`` on its protocol, and that side pauses *reading on the other socket* until
``resume_writing``. So one direction never holds more than ``read_chunk_bytes + write_buffer_bytes +
read_chunk_bytes`` in user space (the fixed buffer, the queue, one chunk past the mark), however slow
the receiver is: the sender's kernel buffer fills up and its writes block.

End of stream on one side is forwarded as a half-close (``write_eof``) while the other direction keeps
flowing; when both sides have sent EOF the pump closes both. One idle deadline covers both directions
(a long download with a silent client is not idle). The bytes are forwarded unmodified.

This is the "protocol" half of the design: no coroutine per chunk and no socket calls besides the
transports'. ``connection.py`` does the connecting; ``IdleDeadline`` is pure bookkeeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

METRIC_FLUSH_BYTES = 1024 * 1024  # report bytes to ``on_bytes`` in batches of this, and when the pump ends

Direction = Literal["to_target", "to_client"]
Outcome = Literal["closed", "idle", "reset", "shutdown"]
ByteCallback = Callable[[Direction, int], None]


@dataclass(frozen=True)
class PumpResult:
    bytes_to_target: int
    bytes_to_client: int
    outcome: Outcome  # closed: both sent EOF; idle: idle timeout; reset: a socket failed; shutdown: aborted


class IdleDeadline:
    """Pure bookkeeping: when was the last byte, and how long until the connection counts as idle."""

    def __init__(self, timeout_seconds: float, now: float) -> None:
        self.timeout_seconds = timeout_seconds
        self.last_activity = now

    def touch(self, now: float) -> None:
        self.last_activity = now

    def remaining(self, now: float) -> float:
        return self.last_activity + self.timeout_seconds - now


class IdleWatchdog:
    """One timer per connection that re-arms itself lazily, so a byte costs one float store, not a timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: IdleDeadline, on_idle: Callable[[], None]) -> None:
        self._loop = loop
        self._deadline = deadline
        self._on_idle = on_idle
        self._handle: asyncio.TimerHandle | None = loop.call_later(deadline.timeout_seconds, self._check)

    def _check(self) -> None:
        remaining = self._deadline.remaining(self._loop.time())
        if remaining > 0:
            self._handle = self._loop.call_later(remaining, self._check)
            return
        self._handle = None
        self._on_idle()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class PumpSide(asyncio.BufferedProtocol):
    """The protocol of one socket; what it reads goes to ``peer``'s transport."""

    def __init__(self, pump: "Pump", direction: Direction) -> None:
        self._pump = pump
        self._direction = direction  # where the bytes this side reads are going
        self._buffer = memoryview(bytearray(pump.read_chunk_bytes))
        self.peer: PumpSide | None = None
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # a stream protocol is only ever given a stream transport
        self.transport = stream
        stream.set_write_buffer_limits(high=self._pump.write_buffer_bytes)
        assert self.peer is not None
        if self.peer.lost:  # the target hung up before the client was attached
            stream.abort()
        elif self.peer.transport is None:
            stream.pause_reading()  # nowhere to send yet; the peer resumes us when it connects
        else:
            self.peer.transport.resume_reading()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._pump.touch()
        # bytes(): the peer's transport may keep the chunk queued, and our buffer is reused on the next read.
        self.peer.transport.write(bytes(self._buffer[:nbytes]))  # type: ignore[union-attr]
        self._pump.count(self._direction, nbytes)

    def eof_received(self) -> bool:
        if not self.eof:
            self.eof = True
            self._pump.side_finished_sending(self)
        return True  # keep our sending half open: the other direction may still be flowing

    def pause_writing(self) -> None:
        self.peer.transport.pause_reading()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        self.peer.transport.resume_reading()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._pump.side_lost(self, exc)


class Pump:
    """The two sides of one proxied connection and how it ends. Await ``finished`` for the result."""

    def __init__(
        self,
        *,
        read_chunk_bytes: int,
        write_buffer_bytes: int,
        idle_timeout_seconds: float,
        on_bytes: ByteCallback | None = None,
    ) -> None:
        self.read_chunk_bytes = read_chunk_bytes
        self.write_buffer_bytes = write_buffer_bytes
        self._loop = asyncio.get_running_loop()
        self._on_bytes = on_bytes
        self.client_side = PumpSide(self, "to_target")
        self.target_side = PumpSide(self, "to_client")
        self.client_side.peer, self.target_side.peer = self.target_side, self.client_side
        self.totals: dict[Direction, int] = {"to_target": 0, "to_client": 0}
        self._unreported: dict[Direction, int] = {"to_target": 0, "to_client": 0}
        self.finished: asyncio.Future[PumpResult] = self._loop.create_future()
        self._outcome: Outcome | None = None
        self._deadline = IdleDeadline(idle_timeout_seconds, self._loop.time())
        self._watchdog = (
            IdleWatchdog(self._loop, self._deadline, lambda: self.abort("idle")) if idle_timeout_seconds > 0 else None
        )

    def touch(self) -> None:
        self._deadline.touch(self._loop.time())

    def count(self, direction: Direction, size: int) -> None:
        self.totals[direction] += size
        self._unreported[direction] += size
        if self._unreported[direction] >= METRIC_FLUSH_BYTES:
            self._report(direction)

    def _report(self, direction: Direction) -> None:
        if self._on_bytes is not None and self._unreported[direction]:
            self._on_bytes(direction, self._unreported[direction])
        self._unreported[direction] = 0

    def side_finished_sending(self, side: PumpSide) -> None:
        """Half-close: forward the EOF; once both sides are done, close both (flushing what is queued)."""
        peer = side.peer
        assert peer is not None and peer.transport is not None
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        else:
            peer.transport.close()
        if side.eof and peer.eof:
            self._outcome = self._outcome or "closed"
            for each in (side, peer):
                if each.transport is not None:
                    each.transport.close()

    def side_lost(self, side: PumpSide, exc: Exception | None) -> None:
        if exc is not None and self._outcome is None:
            self._outcome = "reset"
        peer = side.peer
        assert peer is not None
        if peer.lost:
            self._settle()
        elif peer.transport is not None and not (side.eof and peer.eof):
            # Lost before a clean end (error, or aborted): nobody is left to send to or receive from.
            self._outcome = self._outcome or "reset"
            peer.transport.abort()
        # else: a clean end is still flushing the peer, or the peer never connected (the caller settles)

    def abort(self, outcome: Outcome) -> None:
        """End at once (idle timeout, shutdown): both sockets are aborted, queued bytes dropped."""
        self._outcome = self._outcome or outcome
        for side in (self.client_side, self.target_side):
            if side.transport is not None and not side.lost:
                side.transport.abort()
        if not (self.client_side.transport and self.target_side.transport):
            self._settle()

    def _settle(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
        self._report("to_target")
        self._report("to_client")
        if not self.finished.done():
            outcome = self._outcome or "closed"
            self.finished.set_result(PumpResult(self.totals["to_target"], self.totals["to_client"], outcome))
