"""The small side listeners of the proxy (metrics, configuration): one asyncio server on any endpoint.

A subclass implements ``handle(reader, writer)``; the writer is always closed afterwards, and a client
that vanishes (``OSError``) ends only its own connection.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from .addresses import Endpoint, bound_endpoint, listen_socket, remove_unix_socket

SIDE_LISTEN_BACKLOG = 16


class StreamServer(ABC):
    def __init__(self, endpoint: Endpoint, *, limit: int = 2**16) -> None:
        self._endpoint = endpoint
        self._limit = limit
        self._server: asyncio.Server | None = None
        self.address: Endpoint = endpoint

    async def start(self) -> None:
        sock = listen_socket(self._endpoint, backlog=SIDE_LISTEN_BACKLOG)
        self.address = bound_endpoint(self._endpoint, sock)
        self._server = await asyncio.start_server(self._serve, sock=sock, limit=self._limit)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            remove_unix_socket(self._endpoint)

    @abstractmethod
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection; the writer is closed afterwards."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self.handle(reader, writer)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
