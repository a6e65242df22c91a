"""A minimal asyncio HTTP/1.0 listener that serves ``GET /metrics`` in the Prometheus text format.

It reads one bounded request head with a timeout, answers, and closes; anything else is 404 or 405.
It runs on the proxy's event loop (no extra thread) and knows nothing about the proxy itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .addresses import Endpoint
from .metrics import CONTENT_TYPE
from .settings import KIB, SECONDS
from .stream_server import StreamServer

MAX_REQUEST_HEAD_BYTES = 8 * KIB
REQUEST_TIMEOUT_SECONDS = 5 * SECONDS

logger = logging.getLogger(__name__)


class MetricsServer(StreamServer):
    def __init__(self, endpoint: Endpoint, render: Callable[[], bytes]) -> None:
        super().__init__(endpoint, limit=MAX_REQUEST_HEAD_BYTES)
        self._render = render

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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

    def _respond(self, head: bytes) -> tuple[str, str, bytes]:
        method, _, rest = head.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if path != b"/metrics":
            return "404 Not Found", "text/plain; charset=utf-8", b"not found; try /metrics\n"
        if method != b"GET":
            return "405 Method Not Allowed", "text/plain; charset=utf-8", b"only GET\n"
        return "200 OK", CONTENT_TYPE, self._render()
