"""MetadataPolicy: the operator's tag and TTL limits, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relayer.errors import InvalidValue
from relayer.memory_metadata import MemoryMetadata, MetadataLimits, MetadataPolicy

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
POLICY = MetadataPolicy(MetadataLimits(max_tags=3, max_tag_bytes=8, min_ttl_seconds=60, max_ttl_seconds=3600), clock=lambda: NOW)


class TestTags:
    def test_too_many_distinct_tags_are_refused(self) -> None:
        with pytest.raises(InvalidValue, match=r"`tags` may hold at most 3 distinct tags, got 4"):
            POLICY.tags(["a", "b", "c", "d"])

    def test_a_tag_is_measured_in_utf8_bytes(self) -> None:
        assert POLICY.tags(["éééé"]) == ("éééé",)  # 8 bytes
        with pytest.raises(InvalidValue, match=r"`items\[2\].tags` entries must be at most 8 bytes"):
            POLICY.tags(["ééééé"], "items[2].tags")

    def test_duplicates_merge_before_counting_and_the_order_is_stable(self) -> None:
        assert POLICY.tags(["b", "a", "b", "c", "a"]) == ("a", "b", "c")

    def test_none_and_empty_mean_no_tags(self) -> None:
        assert POLICY.tags(None) == () and POLICY.tags([]) == ()


class TestTtl:
    def test_a_ttl_becomes_an_absolute_time_on_the_injected_clock(self) -> None:
        assert POLICY.metadata(None, 60) == MemoryMetadata((), NOW + timedelta(seconds=60))
        assert POLICY.expires_at(3600) == NOW + timedelta(hours=1)
        assert POLICY.expires_at(None) is None

    @pytest.mark.parametrize("ttl", [59, 3601])
    def test_outside_the_limits_is_refused(self, ttl: int) -> None:
        with pytest.raises(InvalidValue, match=rf"`ttl_seconds` must be within 60..3600 seconds, got {ttl}"):
            POLICY.expires_at(ttl)
