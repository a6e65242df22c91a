"""Helpers shared by the benches: timing, percentiles, a printed table and a JSON report.

Reports go to ``build/bench/<name>.json`` at the repository root (``build/`` is git-ignored).
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPORT_DIRECTORY = Path(__file__).resolve().parent.parent / "build" / "bench"


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile, ``fraction`` in [0, 1]; NaN for no samples."""
    if not samples:
        return math.nan
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be within [0, 1]")
    ordered = sorted(samples)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> "LatencySummary":
        return cls(
            count=len(samples_ms),
            p50_ms=percentile(samples_ms, 0.50),
            p99_ms=percentile(samples_ms, 0.99),
            mean_ms=sum(samples_ms) / len(samples_ms) if samples_ms else math.nan,
            max_ms=max(samples_ms) if samples_ms else math.nan,
        )


async def time_async(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """Run ``call`` once; return (elapsed milliseconds, its result)."""
    started = time.perf_counter()
    result = await call()
    return (time.perf_counter() - started) * 1000.0, result


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(column), *(len(row[index]) for row in cells)) if cells else len(column) for index, column in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths)))
    print("  ".join("-" * width for width in widths))
    for row in cells:
        print("  ".join(value.rjust(width) for value, width in zip(row, widths)))


def write_report(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` plus machine facts to build/bench/<name>.json; return the path."""
    REPORT_DIRECTORY.mkdir(parents=True, exist_ok=True)
    path = REPORT_DIRECTORY / f"{name}.json"
    document = {
        "bench": name,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "processor": platform.machine()},
        **payload,
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    return path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
