"""The parent's small services for its enclave, each one listener on a channel port (manifest.model):

    credentials  CREDENTIALS_PORT  one frame of the instance role's AWS credentials per connection (credentials.py)
    logs         LOGS_PORT         the enclave's log lines (JSON, one per line) → this process's stdout, i.e.
                                   journald under systemd; lines that are not a bounded JSON object are dropped
    time         TIME_PORT         "MWT1" ‖ 16-byte nonce → "MWT1" ‖ nonce ‖ u64 nanoseconds since the epoch
                                   (the enclave bounds what it accepts: enclave/clock_sync.py)

None of them carries anything the host could not see anyway: the enclave keeps payloads and secrets out of
its logs, the credentials are the host's own, and the time is a hint the enclave checks against the NSM.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import sys
import time
from collections.abc import Callable
from typing import TextIO

from .addresses import Endpoint
from .credentials import CredentialsSource, CredentialsUnavailable, encode_frame
from .settings import KIB, SECONDS
from .stream_server import StreamServer

MAX_LOG_LINE_BYTES = 16 * KIB
MAX_LOG_LINES_PER_SECOND = 200  # per connection; more are dropped and counted
LOG_IDLE_TIMEOUT_SECONDS = 3600 * SECONDS
SEND_TIMEOUT_SECONDS = 5 * SECONDS
TIME_MAGIC = b"MWT1"
TIME_REQUEST = struct.Struct(">4s16s")
TIME_ANSWER = struct.Struct(">4s16sQ")

logger = logging.getLogger(__name__)


class CredentialsServer(StreamServer):
    def __init__(self, endpoint: Endpoint, source: CredentialsSource) -> None:
        super().__init__(endpoint)
        self._source = source

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            frame = encode_frame(await self._source.current())
        except CredentialsUnavailable as error:
            logger.warning("credentials channel: none to hand over: %s", error)
            return
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                writer.write(frame)
                await writer.drain()
                writer.write_eof()
        except (TimeoutError, OSError) as error:
            logger.warning("credentials channel: the enclave did not take them: %s", type(error).__name__)


class LogReceiver(StreamServer):
    """Each line the enclave sends: a JSON object, re-emitted on ``output`` with ``"source": "enclave"``."""

    def __init__(self, endpoint: Endpoint, *, output: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(endpoint, limit=MAX_LOG_LINE_BYTES + 1)
        self._output = output
        self._clock = clock
        self.lines = 0
        self.dropped = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        window, count = self._clock(), 0
        while True:
            try:
                async with asyncio.timeout(LOG_IDLE_TIMEOUT_SECONDS):
                    line = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                self.dropped += 1
                return  # an overlong line: the enclave's forwarder never sends one; drop the connection
            except (asyncio.IncompleteReadError, TimeoutError, OSError):
                return
            if self._clock() - window >= 1.0:
                window, count = self._clock(), 0
            count += 1
            if count > MAX_LOG_LINES_PER_SECOND:
                self.dropped += 1
                continue
            self._emit(line)

    def _emit(self, line: bytes) -> None:
        try:
            entry = json.loads(line)
        except ValueError:
            self.dropped += 1
            return
        if not isinstance(entry, dict):
            self.dropped += 1
            return
        entry["source"] = "enclave"
        output = self._output or sys.stdout
        output.write(json.dumps(entry, ensure_ascii=True, separators=(",", ":")) + "\n")
        output.flush()
        self.lines += 1


class TimeServer(StreamServer):
    def __init__(self, endpoint: Endpoint, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        super().__init__(endpoint, limit=TIME_REQUEST.size)
        self._clock_ns = clock_ns

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                request = await reader.readexactly(TIME_REQUEST.size)
                magic, nonce = TIME_REQUEST.unpack(request)
                if magic != TIME_MAGIC:
                    return
                writer.write(TIME_ANSWER.pack(TIME_MAGIC, nonce, self._clock_ns()))
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, OSError):
            return
