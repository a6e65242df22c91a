"""A minimal asyncio HTTP/1.0 listener that serves ``GET /metrics`` in the Prometheus text format.

It reads one bounded request head with a timeout, answers, and closes; anything else is 404 or 405.
It runs on the proxy's event loop (no extra thread) and knows nothing about the proxy itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .addresses import Endpoint, bound_endpoint, listen_socket, remove_unix_socket
from .metrics import CONTENT_TYPE
from .settings import KIB, SECONDS

MAX_REQUEST_HEAD_BYTES = 8 * KIB
REQUEST_TIMEOUT_SECONDS = 5 * SECONDS
METRICS_LISTEN_BACKLOG = 16

logger = logging.getLogger(__name__)


class MetricsServer:
    def __init__(self, endpoint: Endpoint, render: Callable[[], bytes]) -> None:
        self._endpoint = endpoint
        self._render = render
        self._server: asyncio.Server | None = None
        self.address: Endpoint = endpoint

    async def start(self) -> None:
        sock = listen_socket(self._endpoint, backlog=METRICS_LISTEN_BACKLOG)
        self.address = bound_endpoint(self._endpoint, sock)
        self._server = await asyncio.start_server(self._handle, sock=sock, limit=MAX_REQUEST_HEAD_BYTES)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            remove_unix_socket(self._endpoint)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
                status, content_type, body = self._respond(head)
                writer.write(
                    f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n".encode("ascii")
                    + body
                )
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as error:
            logger.debug("metrics request dropped: %s", type(error).__name__)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    def _respond(self, head: bytes) -> tuple[str, str, bytes]:
        method, _, rest = head.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if path != b"/metrics":
            return "404 Not Found", "text/plain; charset=utf-8", b"not found; try /metrics\n"
        if method != b"GET":
            return "405 Method Not Allowed", "text/plain; charset=utf-8", b"only GET\n"
        return "200 OK", CONTENT_TYPE, self._render()
