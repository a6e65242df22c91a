"""Wall time per stage of remember work, for profiling; off unless ``STAGE_TIMING_LOGS`` is set.

When on, each finished stage logs one INFO line on the ``memwal.stages`` logger::

    stage=<name> key=<job id or request id> seconds=<wall seconds>

Only a stage name, an id the relayer already hands to the client and a duration: never content, owners
or keys. ``bench/remember_stages.py`` reads these lines back (``parse_stage_line``) and builds the
per-stage profile of docs/performance.md. A stage that raises logs nothing: the profile is of work done.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

LOGGER_NAME = "memwal.stages"
MAX_KEY_LENGTH = 64  # job ids are UUIDs, request ids are capped at 64 characters too
_LINE = re.compile(r"stage=([a-z_.]{1,64}) key=(\S{1,64}) seconds=(\d{1,9}\.\d{1,9})")
_STAGE_NAME = re.compile(r"[a-z_.]{1,64}")


@dataclass(frozen=True)
class StageSample:
    stage: str
    key: str
    seconds: float


class StageTimer:
    """Times stages and logs them; disabled, ``stage`` costs one attribute check."""

    def __init__(self, *, enabled: bool, clock: Callable[[], float] = time.perf_counter,
                 logger: logging.Logger | None = None) -> None:
        self.enabled = enabled
        self._clock = clock
        self._logger = logger or logging.getLogger(LOGGER_NAME)

    @contextmanager
    def stage(self, name: str, key: str | None) -> Iterator[None]:
        """Time the ``with`` body as stage ``name`` of ``key`` (nothing when disabled or without a key)."""
        if not self.enabled or not key:
            yield
            return
        started = self._clock()
        yield
        self.record(name, key, self._clock() - started)

    def now(self) -> float:
        """A start time for ``since`` (for a stage that ends inside an ``async with`` header)."""
        return self._clock()

    def since(self, name: str, key: str | None, started: float) -> None:
        """Record stage ``name`` of ``key`` as lasting from ``started`` (``now()``) until now."""
        if self.enabled:
            self.record(name, key, self._clock() - started)

    def record(self, name: str, key: str | None, seconds: float) -> None:
        """Log a duration measured elsewhere (e.g. a job's queue wait, from its creation time)."""
        if not self.enabled or not key:
            return
        if not _STAGE_NAME.fullmatch(name):
            raise ValueError(f"stage names are lowercase letters, '.' and '_': {name!r}")
        self._logger.info("stage=%s key=%s seconds=%.6f", name, key[:MAX_KEY_LENGTH], max(0.0, seconds))


DISABLED = StageTimer(enabled=False)


def parse_stage_line(message: str) -> StageSample | None:
    """The sample in a ``memwal.stages`` log message, or ``None`` for any other text."""
    match = _LINE.search(message)
    if match is None:
        return None
    return StageSample(match.group(1), match.group(2), float(match.group(3)))
