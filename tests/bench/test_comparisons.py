"""The benches' shared summary: paired ratios with their spread, and the skewed spaces of the search bench."""

from __future__ import annotations

import json
import math

import pytest

import bench.__main__ as bench_main
from bench import common
from bench.common import Comparison
from bench.search_quality import measured_spaces, space_sizes


def test_ratio_is_the_median_of_per_round_ratios_with_its_spread() -> None:
    comparison = Comparison.of_rounds(
        "b", "latency", subject="ours", baseline="floor", unit="ms",
        subject_rounds=[2.0, 4.0, 3.0, 100.0, 6.0], baseline_rounds=[1.0, 2.0, 1.0, 10.0, 3.0],
    )  # fmt: skip
    # Per-round ratios 2, 2, 3, 10, 2: the outlier round moves the spread, not the median.
    assert comparison.ratio == 2.0
    assert comparison.runs == 5
    assert comparison.ratio_low == 2.0 and math.isclose(comparison.ratio_high, 7.2)
    assert (comparison.subject_value, comparison.baseline_value) == (4.0, 2.0)


def test_rounds_must_pair_up() -> None:
    with pytest.raises(ValueError, match="same, non-zero number"):
        Comparison.of_rounds("b", "m", subject="s", baseline="b", unit="ms", subject_rounds=[1.0], baseline_rounds=[])


def test_chunks_summarise_consecutive_samples_by_their_median() -> None:
    comparison = Comparison.of_chunks(
        "b", "m", subject="s", baseline="b", unit="ms",
        subject_samples=[1, 1, 9, 4, 4, 4], baseline_samples=[2, 2, 2, 2, 2, 2], rounds=2,
    )  # fmt: skip
    # Chunk medians 1 and 4 over 2 and 2: per-chunk ratios 0.5 and 2.
    assert comparison.runs == 2 and comparison.ratio == 1.25 and comparison.subject_value == 2.5


def test_summary_gathers_every_report_and_writes_one_table(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(common, "REPORT_DIRECTORY", tmp_path)
    monkeypatch.setattr(bench_main, "REPORT_DIRECTORY", tmp_path)
    first = Comparison.of_rounds("alpha", "m1", subject="s", baseline="b", unit="ms",
                                 subject_rounds=[2.0], baseline_rounds=[1.0])  # fmt: skip
    second = Comparison.of_rounds("beta", "m2", subject="s", baseline="b", unit="req/s",
                                  subject_rounds=[1.0], baseline_rounds=[4.0])  # fmt: skip
    common.write_report("alpha", {}, [first])
    common.write_report("beta", {}, [second])
    common.write_report("gamma", {})  # a bench without comparisons adds no row
    assert bench_main.summarize() == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["bench"] for row in summary["comparisons"]] == ["alpha", "beta"]
    assert [row["ratio"] for row in summary["comparisons"]] == [2.0, 0.25]
    assert "m1" in capsys.readouterr().out


def test_summary_without_reports_says_what_to_run(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(bench_main, "REPORT_DIRECTORY", tmp_path)
    assert bench_main.summarize() == 1
    assert "run python -m bench first" in capsys.readouterr().err


def test_spaces_are_skewed_and_sum_to_the_rows() -> None:
    sizes = space_sizes(300_000, 1_000)
    assert sum(sizes) == 300_000 and len(sizes) == 1_000
    assert sizes == sorted(sizes, reverse=True) and min(sizes) >= 1
    assert sizes[0] > 100 * sizes[-1]  # a few large spaces, a long tail


def test_measured_spaces_cover_the_size_buckets_once_each() -> None:
    sizes = space_sizes(300_000, 1_000)
    chosen = [sizes[index] for index in measured_spaces(sizes)]
    assert chosen == sorted(chosen) and chosen[-1] == sizes[0]
    for target in (100, 1_000, 10_000):  # 10 is below this table's smallest space
        assert min(abs(size - target) for size in chosen) <= target  # some space within a factor 2 of each bucket


def test_too_few_rows_for_the_spaces_is_refused() -> None:
    with pytest.raises(ValueError):
        space_sizes(5, 10)
