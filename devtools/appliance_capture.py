"""Recording taps: what an untrusted host sees of the enclave's traffic, byte for byte.

A :class:`RecordingTap` listens on a Unix socket, connects each accepted connection to a fixed Unix
target and copies both directions unmodified, appending every byte to a :class:`TrafficCapture`.
The appliance puts one tap on every socket that crosses the enclave boundary (the ingress socket the
host proxy dials, and each egress socket the enclave dials), so a capture holds exactly what the host
proxy carries. Tests then assert what never appears in it (secrets, plaintext).

    capture = TrafficCapture()
    tap = RecordingTap("ingress", listen_path, target_path, capture)
    await tap.start(); ...; await tap.close()
    capture.routes_containing(b"secret")     # → {"openai"} or set()
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

READ_CHUNK_BYTES = 64 * 1024


@dataclass
class CapturedConnection:
    """One proxied connection: ``to_target`` is what the connecting side sent, ``to_client`` the answers."""

    route: str
    to_target: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)


class TrafficCapture:
    """Every connection every tap carried, in order of arrival."""

    def __init__(self) -> None:
        self.connections: list[CapturedConnection] = []

    def open(self, route: str) -> CapturedConnection:
        connection = CapturedConnection(route)
        self.connections.append(connection)
        return connection

    def routes(self) -> set[str]:
        return {connection.route for connection in self.connections}

    def bytes_on(self, route: str) -> int:
        return sum(len(c.to_target) + len(c.to_client) for c in self.connections if c.route == route)

    def streams(self, route: str | None = None) -> list[bytes]:
        """Each direction of each connection (of ``route``, or all) as one byte string."""
        selected = [c for c in self.connections if route is None or c.route == route]
        return [bytes(data) for c in selected for data in (c.to_target, c.to_client)]

    def routes_containing(self, needle: bytes) -> set[str]:
        if not needle:
            raise ValueError("an empty needle matches everything")
        return {c.route for c in self.connections if needle in c.to_target or needle in c.to_client}


class RecordingTap:
    """``unix:listen`` → ``unix:target``, recording both directions into ``capture``."""

    def __init__(self, route: str, listen: Path, target: Path, capture: TrafficCapture) -> None:
        self.route = route
        self.listen = listen
        self.target = target
        self._capture = capture
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.listen.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._accepted, path=str(self.listen))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.listen.unlink(missing_ok=True)

    async def _accepted(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                target_reader, target_writer = await asyncio.open_unix_connection(str(self.target))
            except OSError:
                client_writer.close()
                return
            record = self._capture.open(self.route)
            try:
                await asyncio.gather(
                    _copy(client_reader, target_writer, record.to_target),
                    _copy(target_reader, client_writer, record.to_client),
                )
            finally:
                for writer in (client_writer, target_writer):
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        finally:
            self._tasks.discard(task)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray) -> None:
    """Copy until EOF (forwarded as a half-close) or a socket error; record what passes."""
    try:
        while chunk := await reader.read(READ_CHUNK_BYTES):
            record += chunk
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()
