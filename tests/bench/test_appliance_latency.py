"""The appliance latency bench's arithmetic: per-round differences and the comparison rows it reports."""

from __future__ import annotations

import math

import pytest

from bench.appliance_latency import comparisons, difference_spread

ROUNDS = {"plain": [1.0, 1.0, 2.0], "enclave_socket": [2.0, 2.0, 2.0], "appliance": [3.0, 5.0, 4.0]}


def test_difference_is_paired_by_round_with_its_spread() -> None:
    spread = difference_spread(ROUNDS, "appliance", "plain")  # per-round differences 2, 4, 2
    assert spread["median_ms"] == 2.0
    assert spread["p10_ms"] == 2.0 and math.isclose(spread["p90_ms"], 3.6)


def test_unpaired_rounds_are_refused() -> None:
    with pytest.raises(ValueError):
        difference_spread({"plain": [1.0], "appliance": [1.0, 2.0]}, "appliance", "plain")


def test_comparisons_put_the_goal_on_the_plain_baseline() -> None:
    against_plain, against_socket = comparisons(ROUNDS, "/version")
    assert (against_plain.baseline, against_socket.baseline) == ("plain", "enclave_socket")
    assert against_plain.goal == "<= plain + 3 ms" and against_socket.goal == ""
    assert against_plain.ratio == 3.0 and against_plain.runs == 3  # per-round ratios 3, 5, 2
    assert against_socket.subject_value == 4.0 and against_socket.baseline_value == 2.0
