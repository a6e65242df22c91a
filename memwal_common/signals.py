"""Graceful shutdown for every long-running process: SIGINT and SIGTERM set one event."""

from __future__ import annotations

import asyncio
import signal

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def shutdown_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM; call from inside the running event loop."""
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in SHUTDOWN_SIGNALS:
        loop.add_signal_handler(signum, shutdown.set)
    return shutdown


async def wait_for_shutdown_signal() -> None:
    """Complete on the first SIGINT or SIGTERM, then hand both signals back to their default handlers."""
    try:
        await shutdown_on_signals().wait()
    finally:
        loop = asyncio.get_running_loop()
        for signum in SHUTDOWN_SIGNALS:
            loop.remove_signal_handler(signum)
