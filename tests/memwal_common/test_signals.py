from __future__ import annotations

import asyncio
import os
import signal

from memwal_common.signals import SHUTDOWN_SIGNALS, shutdown_on_signals, wait_for_shutdown_signal


class TestShutdownOnSignals:
    async def test_sigterm_sets_the_event(self):
        loop = asyncio.get_running_loop()
        shutdown = shutdown_on_signals()
        try:
            assert not shutdown.is_set()
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(shutdown.wait(), 5)
        finally:
            for signum in SHUTDOWN_SIGNALS:
                loop.remove_signal_handler(signum)

    async def test_waiting_restores_the_default_handlers(self):
        loop = asyncio.get_running_loop()
        waiter = asyncio.create_task(wait_for_shutdown_signal())
        await asyncio.sleep(0)  # let it install its handlers
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(waiter, 5)
        assert not any(loop.remove_signal_handler(signum) for signum in SHUTDOWN_SIGNALS)  # nothing left to remove
