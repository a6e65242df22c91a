"""What /health reports: each dependency's last probe, refreshed in the background so the route is free.

``HealthMonitor`` probes PostgreSQL (``SELECT 1``), Redis (``PING``), the sidecar (its /health) and the Sui
endpoint every ``interval_seconds``, each with its own timeout, and keeps the last outcome. /health only reads
that snapshot: a load balancer or an SDK polling it costs no sidecar call and no database round trip.
``write_ready`` is true when everything a write needs answered its last probe and the job workers run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

logger = logging.getLogger("memwal.health")

Probe = Callable[[], Awaitable[object]]
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class DependencyState:
    ok: bool
    checked_at: datetime | None = None
    error: str | None = None  # the exception's type name: short, and never a secret or a payload


@dataclass(frozen=True)
class HealthSnapshot:
    dependencies: Mapping[str, DependencyState]
    workers_running: bool

    @property
    def healthy(self) -> bool:
        return all(state.ok for state in self.dependencies.values())

    @property
    def write_ready(self) -> bool:
        return self.healthy and self.workers_running


class HealthMonitor:
    """Probes run together every ``interval_seconds``; a probe that raises or outlasts ``timeout_seconds`` fails."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        workers_running: Callable[[], bool],
        interval_seconds: float,
        timeout_seconds: float,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._probes = dict(probes)
        self._workers_running = workers_running
        self._interval = interval_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._states: dict[str, DependencyState] = {name: DependencyState(ok=False, error="not probed yet") for name in probes}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def snapshot(self) -> HealthSnapshot:
        return HealthSnapshot(dict(self._states), self._workers_running())

    async def refresh(self) -> HealthSnapshot:
        """Probe every dependency once, now."""
        names = list(self._probes)
        outcomes = await asyncio.gather(*(self._probe(name) for name in names))
        for name, state in zip(names, outcomes, strict=True):
            if state.ok != self._states[name].ok:
                logger.warning("dependency %s is %s%s", name, "up" if state.ok else "down",
                               f" ({state.error})" if state.error else "")
            self._states[name] = state
        return self.snapshot()

    async def _probe(self, name: str) -> DependencyState:
        try:
            async with asyncio.timeout(self._timeout):
                await self._probes[name]()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a probe's failure is the dependency's state, whatever it raised
            return DependencyState(ok=False, checked_at=self._clock(), error=type(exc).__name__)
        return DependencyState(ok=True, checked_at=self._clock())

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="health-monitor")

    async def stop(self) -> None:
        """Stop after the probe round in flight (each is bounded by its timeout): no connection is cut mid-way."""
        if self._task is not None:
            self._stop.set()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self.refresh()
            try:
                await asyncio.wait_for(self._stop.wait(), self._interval)
            except TimeoutError:
                pass


class ProbeFailed(Exception):
    """A probe got an answer that says the dependency is not healthy."""
