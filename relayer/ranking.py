"""Optional composite ranking for recall (memwal.md §6): semantic, recency and importance terms.

Active only when recency or importance weights are non-zero; otherwise results keep distance order and
carry no ``score`` (upstream's contract).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from relayer.errors import FieldError, InvalidValue

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


def parse_scoring_weights(value: Any) -> ScoringWeights:
    if value is None:
        return ScoringWeights()
    if not isinstance(value, dict):
        raise FieldError("`scoring_weights` must be an object")
    fields = {}
    for name, default in (("semantic", 1.0), ("recency", 0.0), ("recency_half_life_days", 30.0), ("importance", 0.0)):
        raw = value.get(name, default)
        if raw is None:
            raw = default
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise FieldError(f"`scoring_weights.{name}` must be a number")
        if not math.isfinite(raw):
            raise InvalidValue(f"`scoring_weights.{name}` must be finite")
        fields[name] = float(raw)
    weights = ScoringWeights(**fields)
    for name in ("semantic", "recency", "importance"):
        if not 0 <= getattr(weights, name) <= MAX_WEIGHT:
            raise InvalidValue(f"`scoring_weights.{name}` must be within [0, {MAX_WEIGHT:g}]")
    if weights.recency > 0 and weights.recency_half_life_days < MIN_HALF_LIFE_DAYS:
        raise InvalidValue("`scoring_weights.recency_half_life_days` must be positive when recency is used")
    return weights


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
