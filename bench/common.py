"""Helpers shared by the benches: timing, percentiles, paired comparisons, a printed table and a JSON report.

Reports go to ``build/bench/<name>.json`` at the repository root (``build/`` is git-ignored). Each bench also
states its headline results as ``Comparison`` rows (a subject against its baseline, measured interleaved in
one run); ``python -m bench`` gathers them into one table and ``build/bench/summary.json``.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
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


@dataclass(frozen=True)
class Comparison:
    """A subject against its baseline, both measured in the same rounds (interleaved, so both see the same load).

    ``ratio`` is the median of the per-round ratios subject/baseline and ``ratio_low``..``ratio_high`` their
    10th..90th percentiles: the spread a rerun on this machine can be expected to land in.
    """

    bench: str
    metric: str
    subject: str
    baseline: str
    unit: str
    subject_value: float  # median of the per-round values
    baseline_value: float
    ratio: float
    ratio_low: float
    ratio_high: float
    runs: int
    goal: str = ""

    @classmethod
    def of_rounds(
        cls, bench: str, metric: str, *, subject: str, baseline: str, unit: str,
        subject_rounds: Sequence[float], baseline_rounds: Sequence[float], goal: str = "",
    ) -> "Comparison":
        """From per-round values (round i of the subject paired with round i of the baseline)."""
        if len(subject_rounds) != len(baseline_rounds) or not subject_rounds:
            raise ValueError("a comparison needs the same, non-zero number of subject and baseline rounds")
        ratios = [s / b if b else math.nan for s, b in zip(subject_rounds, baseline_rounds)]
        return cls(
            bench=bench, metric=metric, subject=subject, baseline=baseline, unit=unit,
            subject_value=percentile(subject_rounds, 0.5), baseline_value=percentile(baseline_rounds, 0.5),
            ratio=percentile(ratios, 0.5), ratio_low=percentile(ratios, 0.1), ratio_high=percentile(ratios, 0.9),
            runs=len(ratios), goal=goal,
        )  # fmt: skip

    @classmethod
    def of_chunks(
        cls, bench: str, metric: str, *, subject: str, baseline: str, unit: str,
        subject_samples: Sequence[float], baseline_samples: Sequence[float], rounds: int, goal: str = "",
    ) -> "Comparison":
        """From two interleaved sample lists split into ``rounds`` consecutive chunks, each summarised by its median."""
        return cls.of_rounds(bench, metric, subject=subject, baseline=baseline, unit=unit,
                             subject_rounds=_chunk_medians(subject_samples, rounds),
                             baseline_rounds=_chunk_medians(baseline_samples, rounds), goal=goal)  # fmt: skip

    def row(self) -> list[Any]:
        return [self.bench, self.metric, self.subject, self.baseline, self.subject_value, self.baseline_value,
                self.unit, self.ratio, f"{_cell(self.ratio_low)}–{_cell(self.ratio_high)}", self.runs, self.goal]  # fmt: skip


COMPARISON_COLUMNS = ("bench", "metric", "subject", "baseline", "subject", "baseline", "unit", "ratio",
                      "spread p10–p90", "runs", "goal")  # fmt: skip


def _chunk_medians(samples: Sequence[float], rounds: int) -> list[float]:
    rounds = max(1, min(rounds, len(samples)))
    size = len(samples) / rounds
    return [percentile(samples[int(i * size):int((i + 1) * size)], 0.5) for i in range(rounds)]


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(column), *(len(row[index]) for row in cells)) if cells else len(column) for index, column in enumerate(columns)]
    print(f"\n{title}")
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths)))
    print("  ".join("-" * width for width in widths))
    for row in cells:
        print("  ".join(value.rjust(width) for value, width in zip(row, widths)))


def write_report(name: str, payload: dict[str, Any], comparisons: Sequence[Comparison] = ()) -> Path:
    """Write ``payload`` plus machine facts and the comparisons to build/bench/<name>.json; return the path."""
    REPORT_DIRECTORY.mkdir(parents=True, exist_ok=True)
    path = REPORT_DIRECTORY / f"{name}.json"
    document = {
        "bench": name,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "processor": platform.machine()},
        **payload,
        "comparisons": [asdict(comparison) for comparison in comparisons],
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    return path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
