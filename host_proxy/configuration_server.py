"""Serve the enclave document on the configuration channel: one frame per connection, then close.

The enclave dials this listener at boot (``manifest.CONFIGURATION_PORT`` on the parent, framing in
``manifest.channel``). The document is public configuration, not a secret: the enclave commits its hash
to PCR16, so serving anything else only makes the enclave attest to a configuration clients refuse.
Each connection gets ``SEND_TIMEOUT_SECONDS`` to take the frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from manifest import encode_frame

from .addresses import Endpoint
from .settings import SECONDS
from .stream_server import StreamServer

SEND_TIMEOUT_SECONDS = 10 * SECONDS
CONFIGURATION_ROUTE = "configuration"

logger = logging.getLogger(__name__)


class ConfigurationServer(StreamServer):
    def __init__(self, endpoint: Endpoint, document: bytes, *, on_served: Callable[[], None] = lambda: None) -> None:
        super().__init__(endpoint)
        self._frame = encode_frame(document)
        self._on_served = on_served

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                writer.write(self._frame)
                await writer.drain()
                writer.write_eof()
        except (TimeoutError, OSError) as error:
            logger.warning("configuration channel: the enclave did not take the document: %s", type(error).__name__)
            return
        self._on_served()
        logger.info("served the enclave document (%d bytes)", len(self._frame))
