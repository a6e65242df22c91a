"""Serve the enclave document on the configuration channel: one frame per connection, then close.

The enclave dials this listener at boot (``manifest.CONFIGURATION_PORT`` on the parent, framing in
``manifest.channel``). The document is public configuration, not a secret: the enclave commits its hash
to PCR16, so serving anything else only makes the enclave attest to a configuration clients refuse.
Each connection gets ``SEND_TIMEOUT_SECONDS`` to take the frame; the proxy's connection limit applies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from manifest import encode_frame

from .addresses import Endpoint, bound_endpoint, listen_socket, remove_unix_socket
from .settings import SECONDS

SEND_TIMEOUT_SECONDS = 10 * SECONDS
CONFIGURATION_LISTEN_BACKLOG = 16
CONFIGURATION_ROUTE = "configuration"

logger = logging.getLogger(__name__)


class ConfigurationServer:
    def __init__(self, endpoint: Endpoint, document: bytes, *, on_served: Callable[[], None] = lambda: None) -> None:
        self._endpoint = endpoint
        self._frame = encode_frame(document)
        self._on_served = on_served
        self._server: asyncio.Server | None = None
        self.address: Endpoint = endpoint

    async def start(self) -> None:
        sock = listen_socket(self._endpoint, backlog=CONFIGURATION_LISTEN_BACKLOG)
        self.address = bound_endpoint(self._endpoint, sock)
        self._server = await asyncio.start_server(self._handle, sock=sock)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            remove_unix_socket(self._endpoint)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                writer.write(self._frame)
                await writer.drain()
                writer.write_eof()
            self._on_served()
            logger.info("served the enclave document (%d bytes)", len(self._frame))
        except (TimeoutError, OSError) as error:
            logger.warning("configuration channel: the enclave did not take the document: %s", type(error).__name__)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

