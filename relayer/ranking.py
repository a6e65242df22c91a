"""Optional composite ranking for recall (memwal.md §6): semantic, recency and importance terms.

Active only when recency or importance weights are non-zero; otherwise results keep distance order and
carry no ``score`` (upstream's contract).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

MAX_WEIGHT = 100.0
MIN_HALF_LIFE_DAYS = 1e-6


@dataclass(frozen=True)
class ScoringWeights:
    semantic: float = 1.0
    recency: float = 0.0
    recency_half_life_days: float = 30.0
    importance: float = 0.0

    @property
    def active(self) -> bool:
        return self.recency != 0 or self.importance != 0


T = TypeVar("T")


def score(weights: ScoringWeights, *, distance: float, created_at: datetime, importance: float, now: datetime) -> float:
    age_days = max(0.0, (now - created_at).total_seconds() / 86400.0)
    recency = 2 ** (-age_days / weights.recency_half_life_days) if weights.recency else 0.0
    return weights.semantic * (1 - distance) + weights.recency * recency + weights.importance * importance


def rank(items: Sequence[T], scores: Sequence[float]) -> list[tuple[T, float]]:
    """Stable sort by score, descending."""
    return sorted(zip(items, scores, strict=True), key=lambda pair: -pair[1])


def utc_now() -> datetime:
    return datetime.now(UTC)
