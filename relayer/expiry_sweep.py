"""The expiry sweep: a background task that forgets memories whose TTL has run out.

Expired memories are hidden from recall and listings the moment ``expires_at`` passes (the queries compare it
with the clock); the sweep then forgets them through the same path as ``POST /api/forget/memory``
(``ForgetStore.forget``, reason ``expired``), a bounded batch per round, and prunes old tombstones. Replicas may
sweep at once: forgetting is idempotent per memory, so they only duplicate a little work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from relayer.database.errors import DatabaseError
from relayer.database.forgetting import ForgetReason, ForgetStore

logger = logging.getLogger("memwal.expiry")


@dataclass(frozen=True)
class SweepLimits:
    interval_seconds: float  # between rounds
    batch: int  # memories forgotten (and tombstones pruned) per round at most
    tombstone_retention_seconds: int  # a tombstone older than this is dropped once its remember job is final


@dataclass(frozen=True)
class SweepRound:
    forgotten: int
    pruned: int


class ExpirySweep:
    def __init__(self, store: ForgetStore, limits: SweepLimits, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._store = store
        self._limits = limits
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> SweepRound:
        """One round: forget up to ``batch`` expired memories, then prune up to ``batch`` old tombstones."""
        forgotten = 0
        for memory in await self._store.expired(self._limits.batch):
            if await self._store.forget(memory.owner, memory.memory_id, ForgetReason.EXPIRED) is not None:
                forgotten += 1
        pruned = await self._store.prune(timedelta(seconds=self._limits.tombstone_retention_seconds), self._limits.batch)
        return SweepRound(forgotten, pruned)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="expiry-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except DatabaseError as exc:
                logger.warning("expiry sweep failed (next round retries): %s", type(exc).__name__)
            await self._sleep(self._limits.interval_seconds)
