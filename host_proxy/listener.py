"""Accept loops (one per route) and the connection tracker they share.

``ConnectionTracker`` enforces ``max_connections`` across all routes and remembers every live
connection task, so shutdown can wait for them and then cancel the stragglers. ``Listener.run`` is the
accept loop of one route: a connection over the limit is accepted and closed at once (and counted),
an ``accept()`` error is counted and backed off, a failed connect to the target ends only that
connection. Nothing a client or a target does raises out of the loop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

from .addresses import Endpoint, bound_endpoint, listen_socket, remove_unix_socket
from .connection import handle_connection
from .metrics import ProxyMetrics
from .settings import SECONDS, Limits, Route

ACCEPT_ERROR_BACKOFF_SECONDS = 0.1 * SECONDS  # after EMFILE/ENFILE/ENOBUFS, before accepting again
_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

logger = logging.getLogger(__name__)


class ConnectionTracker:
    """Counts live connections against one limit and keeps their tasks for shutdown."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self._tasks: set[asyncio.Task[None]] = set()
        self._reserved = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        return self._reserved

    def try_reserve(self) -> bool:
        if self._reserved >= self.max_connections:
            return False
        self._reserved += 1
        self._idle.clear()
        return True

    def track(self, task: asyncio.Task[None]) -> None:
        """Attach a task to a reservation; the reservation is released when the task ends."""
        self._tasks.add(task)
        task.add_done_callback(self._release)

    def _release(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._reserved -= 1
        if self._reserved == 0:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no connection is live; False if ``timeout`` seconds passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Listener:
    """The listening socket and accept loop of one route."""

    def __init__(self, route: Route, limits: Limits, tracker: ConnectionTracker, metrics: ProxyMetrics) -> None:
        self.route = route
        self._limits = limits
        self._tracker = tracker
        self._metrics = metrics
        self._route_metrics = metrics.for_route(route.label)
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self.address: Endpoint = route.listen

    def bind(self) -> None:
        """Open the listening socket (raises ``ListenError``); accepting starts with ``start``."""
        self._sock = listen_socket(self.route.listen, backlog=self._limits.listen_backlog)
        self.address = bound_endpoint(self.route.listen, self._sock)

    def start(self) -> None:
        if self._sock is None:
            self.bind()
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"accept {self.route.label}")

    async def stop(self) -> None:
        """Stop accepting: cancel the loop, close the socket; live connections are not touched."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            remove_unix_socket(self.route.listen)

    async def run(self) -> None:
        assert self._sock is not None, "bind() first"
        loop = asyncio.get_running_loop()
        label = self.route.label
        while True:
            try:
                client, _ = await loop.sock_accept(self._sock)
            except OSError as error:
                self._metrics.accept_errors.labels(label).inc()
                if error.errno in _RESOURCE_ERRNOS:
                    logger.error("%s: accept failed (%s); backing off", label, error.strerror)
                    await asyncio.sleep(ACCEPT_ERROR_BACKOFF_SECONDS)
                else:
                    logger.warning("%s: accept failed: %s", label, error)
                continue
            if not self._tracker.try_reserve():
                self._metrics.rejected.labels(label, "limit").inc()
                client.close()
                continue
            task = loop.create_task(
                handle_connection(client, self.route, self._limits, self._metrics, self._route_metrics)
            )
            self._tracker.track(task)
