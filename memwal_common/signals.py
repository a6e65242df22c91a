"""Graceful shutdown for every long-running process: SIGINT and SIGTERM set one event."""

from __future__ import annotations

import asyncio
import signal


def shutdown_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM; call from inside the running event loop."""
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, shutdown.set)
    return shutdown
