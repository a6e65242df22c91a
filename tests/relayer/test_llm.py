"""relayer.llm.parse_facts: NONE, BUCKET<TAB>fact lines, importance per bucket, caps."""

from __future__ import annotations

import pytest

from relayer.llm import BUCKET_IMPORTANCE, MAX_FACT_BYTES, MAX_FACTS, Fact, parse_facts


class TestParseFacts:
    @pytest.mark.parametrize("output", ["NONE", "none", "  NONE \n", "", "\n\n", "NONE\nNONE"])
    def test_nothing(self, output):
        assert parse_facts(output) == []

    def test_oversized_fact_is_dropped(self):
        assert parse_facts(f"vital\t{'x' * (MAX_FACT_BYTES + 1)}\nstandard\tkept") == [Fact("kept", 0.5)]

    def test_trailing_tab_is_trimmed_before_splitting_as_upstream(self):
        # Upstream trims the line, then splits on the first tab: "vital\t  " becomes the fact "vital".
        assert parse_facts("vital\t   \ntrivial\tok") == [Fact("vital", 0.5), Fact("ok", 0.2)]
        assert parse_facts("  standard\tFact A  \n\tFact B\t\n") == [Fact("Fact A", 0.5), Fact("Fact B", 0.5)]

    def test_buckets(self):
        output = "vital\tLives in Lisbon\nSTANDARD\tLikes tea\n trivial \tWore blue today\nunknown\tHas a dog"
        assert parse_facts(output) == [
            Fact("Lives in Lisbon", 0.9), Fact("Likes tea", 0.5), Fact("Wore blue today", 0.2), Fact("Has a dog", 0.5),
        ]
        assert BUCKET_IMPORTANCE == {"vital": 0.9, "standard": 0.5, "trivial": 0.2}

    def test_line_without_bucket_is_standard(self):
        assert parse_facts("Just a fact") == [Fact("Just a fact", 0.5)]

    def test_only_the_first_tab_splits(self):
        assert parse_facts("vital\ta\tb") == [Fact("a\tb", 0.9)]

    def test_cap(self):
        facts = parse_facts("\n".join(f"standard\tfact {i}" for i in range(MAX_FACTS + 5)))
        assert len(facts) == MAX_FACTS == 20
        assert facts[-1].text == f"fact {MAX_FACTS - 1}"

    def test_none_lines_inside_output_are_skipped(self):
        assert parse_facts("NONE\nvital\tx") == [Fact("x", 0.9)]
