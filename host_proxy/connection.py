"""One proxied connection: connect to the route's target, run a ``Pump``, settle the metrics.

Everything that can go wrong here ends this connection only. ``handle_connection`` never raises
except ``CancelledError`` (shutdown), and even then it aborts both sockets and settles its metrics.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from .addresses import connect
from .errors import ConnectError
from .metrics import ProxyMetrics, RouteMetrics
from .pump import ByteCallback, Direction, Pump
from .settings import Limits, Route

logger = logging.getLogger(__name__)


async def handle_connection(
    client_sock: socket.socket, route: Route, limits: Limits, metrics: ProxyMetrics, route_metrics: RouteMetrics
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    route_metrics.accepted.inc()
    route_metrics.active.inc()
    outcome = "shutdown"
    client_attached = False
    pump = Pump(
        read_chunk_bytes=limits.read_chunk_bytes,
        write_buffer_bytes=limits.write_buffer_bytes,
        idle_timeout_seconds=route.idle_timeout(limits),
        on_bytes=_byte_counter(route_metrics),
    )
    try:
        try:
            await connect(route.target, lambda: pump.target_side, timeout=limits.connect_timeout_seconds)
        except ConnectError as error:
            metrics.connect_failures.labels(route.label, error.reason).inc()
            logger.warning("%s: connect failed (%s): %s", route.label, error.reason, error)
            outcome = "connect_failed"
            pump.abort("reset")  # nothing attached: this only stops the idle timer
            return
        route_metrics.connect_duration.observe(loop.time() - started)
        try:
            await loop.connect_accepted_socket(lambda: pump.client_side, client_sock)
            client_attached = True
        except OSError as error:  # the client vanished while we connected to the target
            logger.info("%s: client gone before the pump started: %s", route.label, error)
            pump.abort("reset")
        outcome = (await asyncio.shield(pump.finished)).outcome
    finally:
        if not client_attached:
            client_sock.close()
        if not pump.finished.done() and outcome != "connect_failed":
            pump.abort("shutdown")  # cancelled: drop both sockets now
            outcome = (await pump.finished).outcome
        metrics.closed.labels(route.label, outcome).inc()
        route_metrics.active.dec()
        route_metrics.duration.observe(loop.time() - started)


def _byte_counter(route_metrics: RouteMetrics) -> ByteCallback:
    to_target = route_metrics.bytes_to_target.inc
    to_client = route_metrics.bytes_to_client.inc

    def count(direction: Direction, size: int) -> None:
        (to_target if direction == "to_target" else to_client)(size)

    return count
