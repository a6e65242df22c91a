"""relayer.job_runner.WorkSignal: one queued job wakes one idle worker, and no signal is lost."""

from __future__ import annotations

import asyncio

from relayer.job_runner import WorkSignal

FOREVER = 3600.0  # a wait that only a signal ends within the test


async def settle() -> None:
    for _ in range(10):  # let woken tasks run to completion
        await asyncio.sleep(0)


async def test_one_signal_wakes_one_of_the_idle_workers():
    signal = WorkSignal(limit=8)
    waiters = [asyncio.create_task(signal.wait(FOREVER)) for _ in range(3)]
    await settle()
    await signal.notify()
    await settle()
    assert sum(waiter.done() for waiter in waiters) == 1
    await signal.notify()
    await signal.notify()
    await settle()
    assert all(waiter.done() for waiter in waiters)


async def test_a_signal_sent_while_nobody_waits_is_kept_up_to_the_limit():
    signal = WorkSignal(limit=2)
    for _ in range(5):
        await signal.notify()
    await asyncio.wait_for(signal.wait(FOREVER), 10)  # returns at once: the two kept signals
    await asyncio.wait_for(signal.wait(FOREVER), 10)
    third = asyncio.create_task(signal.wait(FOREVER))
    await settle()
    assert not third.done()  # the limit dropped the rest: a claim finds their jobs anyway
    third.cancel()


async def test_without_a_signal_the_wait_ends_at_its_timeout():
    await asyncio.wait_for(WorkSignal(limit=1).wait(0.01), 10)
