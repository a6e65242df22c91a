"""The enclave's logs leave through the log channel to its parent, as JSON lines, with payloads and secrets out.

An enclave that is not in debug mode has no console; its parent receives what it sends on
``manifest.LOGS_PORT`` (host_proxy/host_services.py writes it to journald). What a line may hold:

    ts, level, logger   as usual
    message             the formatted message with every provisioned secret value replaced by [redacted],
                        cut to MAX_MESSAGE_CHARACTERS (no payload-sized text leaves)
    exception           the exception's type and its frames (file:line function), never its message: an
                        exception text can quote request data

Nothing else of a record (extra fields, arguments) is sent. The queue is bounded: when the parent does not
read, the oldest lines are dropped and the next line that gets through says how many.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import traceback
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime

from host_proxy.addresses import Endpoint, connect_stream
from host_proxy.errors import ConnectError

MAX_MESSAGE_CHARACTERS = 1024
MAX_FRAMES = 20
MAX_QUEUED_LINES = 10_000
MIN_SECRET_CHARACTERS = 4  # shorter values would redact ordinary words
RECONNECT_SECONDS = 1.0
REDACTED = "[redacted]"


class Redactions:
    """Secret values to cut out of every line; filled in once the secrets arrive. Thread-safe."""

    def __init__(self) -> None:
        self._values: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            known = set(self._values) | {value for value in values if len(value) >= MIN_SECRET_CHARACTERS}
            self._values = tuple(sorted(known, key=len, reverse=True))  # longest first: no partial leftovers

    def apply(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


class SafeJsonFormatter(logging.Formatter):
    def __init__(self, redactions: Redactions) -> None:
        super().__init__()
        self._redactions = redactions

    def format(self, record: logging.LogRecord) -> str:
        message = self._redactions.apply(record.getMessage())
        if len(message) > MAX_MESSAGE_CHARACTERS:
            message = message[:MAX_MESSAGE_CHARACTERS] + f"… [{len(message) - MAX_MESSAGE_CHARACTERS} characters cut]"
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        if record.exc_info and record.exc_info[0] is not None:
            frames = traceback.extract_tb(record.exc_info[2])[-MAX_FRAMES:]
            entry["exception"] = {
                "type": record.exc_info[0].__qualname__,
                "frames": [f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}" for frame in frames],
            }
        return json.dumps(entry, ensure_ascii=True, separators=(",", ":"))


class ParentLogHandler(logging.Handler):
    """Queues formatted lines (from any thread); :meth:`forward` sends them to the parent."""

    def __init__(self, redactions: Redactions, *, max_lines: int = MAX_QUEUED_LINES) -> None:
        super().__init__()
        self.setFormatter(SafeJsonFormatter(redactions))
        self._lines: deque[str] = deque()
        self._max_lines = max_lines
        self._guard = threading.Lock()
        self._dropped = 0
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a log call must never raise into the caller
            self.handleError(record)
            return
        with self._guard:
            if len(self._lines) >= self._max_lines:
                self._lines.popleft()
                self._dropped += 1
            self._lines.append(line)
        if self._loop is not None and self._wakeup is not None:
            try:
                self._loop.call_soon_threadsafe(self._wakeup.set)
            except RuntimeError:  # the loop is closed: the lines stay queued
                pass

    async def drained(self, timeout_seconds: float) -> bool:
        """Wait (at most ``timeout_seconds``) until every queued line was handed to the connection."""
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        while asyncio.get_running_loop().time() < deadline:
            with self._guard:
                if not self._lines:
                    return True
            await asyncio.sleep(0.01)
        return False

    def _take(self) -> list[str]:
        with self._guard:
            lines = list(self._lines)
            self._lines.clear()
            if self._dropped:
                lines.insert(0, json.dumps({"level": "warning", "logger": "memwal.enclave.logs",
                                            "message": f"{self._dropped} log line(s) dropped: the parent did not read"}))  # fmt: skip
                self._dropped = 0
        return lines

    async def forward(self, endpoint: Endpoint) -> None:
        """Send queued lines to ``endpoint`` until cancelled; reconnect when the parent goes away."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        while True:
            try:
                _, writer = await connect_stream(endpoint, timeout=5.0)
            except ConnectError:
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            try:
                while True:
                    lines = self._take()
                    if lines:
                        writer.write("".join(line + "\n" for line in lines).encode("ascii", "replace"))
                        await writer.drain()
                    else:
                        self._wakeup.clear()
                        await self._wakeup.wait()
            except OSError:
                await asyncio.sleep(RECONNECT_SECONDS)
            finally:
                writer.close()
