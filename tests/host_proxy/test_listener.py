from __future__ import annotations

import asyncio

from host_proxy.listener import ConnectionTracker


class TestConnectionTracker:
    async def test_limit_and_release(self):
        tracker = ConnectionTracker(max_connections=2)
        gate = asyncio.Event()
        assert tracker.try_reserve() and tracker.try_reserve()
        assert not tracker.try_reserve()
        tasks = [asyncio.create_task(gate.wait()) for _ in range(2)]
        for task in tasks:
            tracker.track(task)
        assert tracker.active == 2
        assert not await tracker.wait_idle(0.05)
        gate.set()
        assert await tracker.wait_idle(1)
        assert tracker.active == 0 and tracker.try_reserve()

    async def test_cancel_all_cancels_live_tasks(self):
        tracker = ConnectionTracker(max_connections=5)
        tracker.try_reserve()
        task = asyncio.create_task(asyncio.Event().wait())
        tracker.track(task)
        await tracker.cancel_all()
        assert task.cancelled() and tracker.active == 0
