"""relayer.ranking: scoring-weight validation (400 vs 422), the composite score, and stable ordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relayer.api_models import RecallRequest, scoring_weights
from relayer.errors import FieldError, InvalidValue
from relayer.ranking import ScoringWeights, rank, score
from relayer.validation import validate_request

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class TestScoringWeightsBody:
    @pytest.mark.parametrize("value,match", [([1], "must be an object"), ({"semantic": "1"}, "must be a number"),
                                             ({"recency": True}, "must be a number")])
    def test_wrong_types_are_422(self, value, match):
        with pytest.raises(FieldError, match=match):
            validate_request(RecallRequest, {"query": "q", "scoring_weights": value})

    @pytest.mark.parametrize("value,match", [
        ({"semantic": float("nan")}, "finite"), ({"importance": float("inf")}, "finite"),
        ({"semantic": -0.1}, r"within \[0, 100\]"), ({"recency": 100.5}, r"within \[0, 100\]"),
        ({"recency": 1, "recency_half_life_days": 0}, "positive"), ({"recency": 1, "recency_half_life_days": -3}, "positive"),
    ])
    def test_out_of_range_is_400(self, value, match):
        with pytest.raises(InvalidValue, match=match):
            validate_request(RecallRequest, {"query": "q", "scoring_weights": value})

    def test_defaults_and_nulls(self):
        def parsed(value):
            return scoring_weights(validate_request(RecallRequest, {"query": "q", "scoring_weights": value}).scoring_weights)

        assert parsed(None) == ScoringWeights()
        assert parsed({"semantic": None}) == ScoringWeights()
        assert not ScoringWeights().active
        assert parsed({"importance": 0.5}).active
        assert parsed({"recency": 0, "recency_half_life_days": 0}) == ScoringWeights(recency_half_life_days=0.0)


class TestScore:
    def test_semantic_only(self):
        assert score(ScoringWeights(), distance=0.25, created_at=NOW, importance=0.9, now=NOW) == pytest.approx(0.75)

    def test_recency_halves_per_half_life(self):
        weights = ScoringWeights(semantic=0, recency=1, recency_half_life_days=10)
        assert score(weights, distance=0, created_at=NOW - timedelta(days=10), importance=0, now=NOW) == pytest.approx(0.5)
        assert score(weights, distance=0, created_at=NOW - timedelta(days=20), importance=0, now=NOW) == pytest.approx(0.25)
        assert score(weights, distance=0, created_at=NOW + timedelta(days=5), importance=0, now=NOW) == pytest.approx(1.0)

    def test_composite(self):
        weights = ScoringWeights(semantic=2, recency=1, recency_half_life_days=1, importance=3)
        value = score(weights, distance=0.5, created_at=NOW - timedelta(days=1), importance=0.2, now=NOW)
        assert value == pytest.approx(2 * 0.5 + 0.5 + 3 * 0.2)


class TestRank:
    def test_descending_and_stable(self):
        ranked = rank(["a", "b", "c", "d"], [0.1, 0.5, 0.1, 0.5])
        assert [item for item, _ in ranked] == ["b", "d", "a", "c"]
