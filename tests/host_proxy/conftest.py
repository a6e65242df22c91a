"""Real-socket helpers for the host_proxy tests.

    short_dir       a short temporary directory (AF_UNIX paths must fit in 107 bytes)
    TargetServer    an asyncio server on a real socket that records every byte it receives; modes:
                    "echo" (send each chunk back, half-close on EOF), "reply_after_eof" (answer only after
                    the client's EOF: proves half-close travels through the proxy), "stream" (send its own
                    payload while reading), "silent" (accept and never read)
    running_proxy   start a Proxy for some routes, always shut it down
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from host_proxy.addresses import Endpoint, TcpEndpoint, UnixEndpoint
from host_proxy.metrics import ProxyMetrics
from host_proxy.proxy import Proxy
from host_proxy.settings import Limits, Route, Settings


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hp-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class TargetServer:
    def __init__(self, mode: str = "echo", *, payload: bytes = b"") -> None:
        self.mode = mode
        self.payload = payload
        self.received: list[bytes] = []  # per connection, everything it sent us
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task] = set()
        self.endpoint: Endpoint | None = None

    async def start_unix(self, path: Path) -> "TargetServer":
        self._server = await asyncio.start_unix_server(self._handle, str(path))
        self.endpoint = UnixEndpoint(str(path))
        return self

    async def start_tcp(self) -> "TargetServer":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.endpoint = TcpEndpoint("127.0.0.1", self._server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._handlers.add(asyncio.current_task())
        self.connections += 1
        index = len(self.received)
        self.received.append(b"")
        try:
            if self.mode == "silent":
                await asyncio.Event().wait()
            sender = asyncio.create_task(self._send_payload(writer)) if self.mode == "stream" else None
            while chunk := await reader.read(65536):
                self.received[index] += chunk
                if self.mode == "echo":
                    writer.write(chunk)
                    await writer.drain()
            if self.mode == "reply_after_eof":
                data = self.received[index]
                writer.write(f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode())
            if sender is not None:
                await sender
            writer.write_eof()
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:  # close() stops us; end normally so asyncio logs nothing
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()
            self._handlers.discard(asyncio.current_task())

    async def _send_payload(self, writer: asyncio.StreamWriter) -> None:
        view = memoryview(self.payload)
        for start in range(0, len(view), 7777):  # odd chunk size on purpose
            writer.write(view[start : start + 7777])
            await writer.drain()


@contextlib.asynccontextmanager
async def target_server(mode: str, where: Path | None = None, *, payload: bytes = b"") -> AsyncIterator[TargetServer]:
    server = TargetServer(mode, payload=payload)
    await (server.start_unix(where) if where is not None else server.start_tcp())
    try:
        yield server
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def running_proxy(*routes: Route, metrics_at: Endpoint | None = None, **limits) -> AsyncIterator[Proxy]:
    proxy = Proxy(Settings(routes, Limits(**limits), metrics_at), metrics=ProxyMetrics())
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.shutdown()


async def open_client(endpoint: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if isinstance(endpoint, UnixEndpoint):
        return await asyncio.open_unix_connection(endpoint.path)
    assert isinstance(endpoint, TcpEndpoint)
    return await asyncio.open_connection(endpoint.host, endpoint.port)


async def close_client(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def sample(metrics: ProxyMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def wait_for(predicate, *, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def socket_buffer_bytes() -> int:
    """The kernel's default send+receive buffer of a Unix stream socket (what sits outside the proxy)."""
    probe, other = socket.socketpair()
    try:
        return probe.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) + probe.getsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF
        )
    finally:
        probe.close()
        other.close()
