from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from relayer.database.pool import Database
from relayer.database.vector_search import (
    EMBEDDING_DIMENSIONS,
    EMBEDDING_INDEX,
    HALFVEC_INDEX_DEFINITION,
    VECTOR_INDEX_DEFINITION,
    SearchTuning,
    detect_search_tuning,
    search_scope,
)
from relayer.database.vectors import VectorStore

pytestmark = [pytest.mark.database, pytest.mark.slow]

ALICE = "0x" + "a" * 64
CROWD_ROWS = 2000  # other owners' rows, all close to the query
TINY_SCOPE = 12
LARGE_SCOPE = 400
ALWAYS_HNSW = SearchTuning(exact_scan_min_rows=1, hnsw_cost_ratio=1e-9)


def _normalized(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _exact_ids(ids: list[str], vectors: np.ndarray, query: np.ndarray, k: int) -> list[str]:
    distances = 1.0 - _normalized(vectors) @ _normalized(query)
    return [ids[int(index)] for index in np.argsort(distances, kind="stable")[:k]]


@pytest.fixture
async def crowded_table(database: Database) -> AsyncIterator[dict[str, object]]:
    """Alice's scopes hidden in a table whose other rows all crowd around the query."""
    rng = np.random.default_rng(7)
    query = _normalized(rng.standard_normal(EMBEDDING_DIMENSIONS)).astype(np.float32)
    crowd = (query + 0.05 * rng.standard_normal((CROWD_ROWS, EMBEDDING_DIMENSIONS))).astype(np.float32)
    tiny = rng.standard_normal((TINY_SCOPE, EMBEDDING_DIMENSIONS)).astype(np.float32)
    large = (query + 2.0 * rng.standard_normal((LARGE_SCOPE, EMBEDDING_DIMENSIONS))).astype(np.float32)
    records = [(f"crowd-{i}", f"0x{i % 50:064x}", "default", f"blob-c{i}", vector) for i, vector in enumerate(crowd)]
    records += [(f"tiny-{i}", ALICE, "tiny", f"blob-t{i}", vector) for i, vector in enumerate(tiny)]
    records += [(f"large-{i}", ALICE, "large", f"blob-l{i}", vector) for i, vector in enumerate(large)]
    async with database.transaction() as connection:
        # Building the graph once after the copy is several times faster than row-by-row inserts.
        # These tests walk the index on the vector itself (the halfvec one has its own test below).
        definition = await connection.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1", EMBEDDING_INDEX)
        await connection.execute(f"DROP INDEX {EMBEDDING_INDEX}")
        await connection.copy_records_to_table(
            "vector_entries", records=records, columns=["id", "owner", "namespace", "blob_id", "embedding"]
        )
        await connection.execute(VECTOR_INDEX_DEFINITION)
    async with database.connection() as connection:
        await connection.execute("ANALYZE vector_entries")
    yield {"query": query, "tiny": tiny, "large": large}
    async with database.transaction() as connection:  # the schema outlives the test (only rows are emptied)
        await connection.execute(f"DROP INDEX IF EXISTS {EMBEDDING_INDEX}")
        await connection.execute(definition)


class TestSmallScopeInBigTable:
    async def test_plain_hnsw_returns_too_few_rows(self, database: Database, crowded_table: dict) -> None:
        # The failure mode we guard against: pgvector's default HNSW scan, then the filter.
        async with database.transaction() as connection:
            await connection.execute("SET LOCAL enable_sort = off")  # steer the planner onto HNSW
            plan = "\n".join(
                row[0] for row in await connection.fetch(
                    "EXPLAIN SELECT id FROM vector_entries WHERE owner = $1 AND namespace = 'tiny'"
                    " ORDER BY embedding <=> $2 LIMIT 10", ALICE, crowded_table["query"],
                )
            )
            rows = await connection.fetch(
                "SELECT id FROM vector_entries WHERE owner = $1 AND namespace = 'tiny'"
                " ORDER BY embedding <=> $2 LIMIT 10", ALICE, crowded_table["query"],
            )
        assert "idx_vector_entries_embedding" in plan
        assert len(rows) < 10

    async def test_search_returns_the_exact_top_k(self, database: Database, crowded_table: dict) -> None:
        hits = await search_scope(database, ALICE, "tiny", crowded_table["query"], 10)
        ids = [f"tiny-{i}" for i in range(TINY_SCOPE)]
        assert [hit.id for hit in hits] == _exact_ids(ids, crowded_table["tiny"], crowded_table["query"], 10)

    async def test_exact_even_when_the_planner_prefers_hnsw(self, database: Database, crowded_table: dict) -> None:
        assert database.size == 1  # so the session setting below reaches the search's connection
        async with database.connection() as connection:
            await connection.execute("SET enable_sort = off")
        try:
            hits = await search_scope(database, ALICE, "tiny", crowded_table["query"], 10)
        finally:
            async with database.connection() as connection:
                await connection.execute("RESET enable_sort")
        ids = [f"tiny-{i}" for i in range(TINY_SCOPE)]
        assert [hit.id for hit in hits] == _exact_ids(ids, crowded_table["tiny"], crowded_table["query"], 10)


class TestLargeScopePath:
    async def test_hnsw_path_returns_full_k_sorted_with_high_recall(self, database: Database, crowded_table: dict) -> None:
        assert not (await detect_search_tuning(database)).hnsw_on_halfvec  # the fixture's index is on the vector
        ids = [f"large-{i}" for i in range(LARGE_SCOPE)]
        rng = np.random.default_rng(11)
        recalls = []
        for _ in range(5):
            query = crowded_table["large"][int(rng.integers(LARGE_SCOPE))] + 0.3 * rng.standard_normal(EMBEDDING_DIMENSIONS)
            hits = await search_scope(database, ALICE, "large", query, 10, ALWAYS_HNSW)
            assert len(hits) == 10
            assert [hit.distance for hit in hits] == sorted(hit.distance for hit in hits)
            assert all(hit.id.startswith("large-") for hit in hits)
            truth = set(_exact_ids(ids, crowded_table["large"], query.astype(np.float32), 10))
            recalls.append(len(truth & {hit.id for hit in hits}) / 10)
        assert np.mean(recalls) >= 0.9

    async def test_halfvec_index_path_walks_that_index_and_keeps_full_precision_order(
        self, database: Database, crowded_table: dict
    ) -> None:
        async with database.transaction() as connection:
            await connection.execute(f"DROP INDEX {EMBEDDING_INDEX}")
            await connection.execute(HALFVEC_INDEX_DEFINITION)  # what migration 008 gives a new deployment
        assert (await detect_search_tuning(database)).hnsw_on_halfvec
        await self._check_halfvec_path(database, crowded_table)
        # The relayer's store finds the index on its first search and gives what the halfvec path gives.
        query = crowded_table["large"][7]
        found = await VectorStore(database, tuning=None).search(ALICE, "large", query, 10)
        aimed = await search_scope(database, ALICE, "large", query, 10, await detect_search_tuning(database))
        assert [hit.id for hit in found] == [hit.id for hit in aimed] and len(found) == 10

    async def _check_halfvec_path(self, database: Database, crowded_table: dict) -> None:
        halfvec = SearchTuning(exact_scan_min_rows=1, hnsw_cost_ratio=1e-9, hnsw_on_halfvec=True)
        query = crowded_table["large"][3] + 0.3 * np.random.default_rng(5).standard_normal(EMBEDDING_DIMENSIONS)
        async with database.transaction() as connection:
            await connection.execute(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('enable_seqscan', 'off', true),"
                " set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)"
            )
            plan = "\n".join(row[0] for row in await connection.fetch(
                "EXPLAIN SELECT id FROM vector_entries WHERE owner = $1 AND namespace = 'large'"
                f" ORDER BY embedding::halfvec({EMBEDDING_DIMENSIONS}) <=> $2::halfvec({EMBEDDING_DIMENSIONS}) LIMIT 40",
                ALICE, query.astype(np.float32),
            ))  # fmt: skip
        assert EMBEDDING_INDEX in plan
        hits = await search_scope(database, ALICE, "large", query, 10, halfvec)
        ids = [f"large-{i}" for i in range(LARGE_SCOPE)]
        truth = _exact_ids(ids, crowded_table["large"], query.astype(np.float32), 10)
        assert [hit.distance for hit in hits] == sorted(hit.distance for hit in hits)
        assert len({hit.id for hit in hits} & set(truth)) >= 9

    async def test_falls_back_to_exact_when_the_walk_stops_early(self, database: Database, crowded_table: dict) -> None:
        # One tuple budget and a tiny candidate list: HNSW cannot reach the far-away tiny scope.
        starved = SearchTuning(
            exact_scan_min_rows=1, hnsw_cost_ratio=1e-9, ef_search=10, min_candidates=10,
            max_scan_tuples_floor=1, max_scan_tuples_ceiling=1,
        )
        hits = await search_scope(database, ALICE, "tiny", crowded_table["query"], 10, starved)
        ids = [f"tiny-{i}" for i in range(TINY_SCOPE)]
        assert [hit.id for hit in hits] == _exact_ids(ids, crowded_table["tiny"], crowded_table["query"], 10)


class TestSearchTuning:
    def test_threshold_grows_with_the_square_root_of_the_table(self) -> None:
        tuning = SearchTuning(exact_scan_min_rows=10, hnsw_cost_ratio=1.0, overfetch_factor=4, min_candidates=100)
        assert tuning.exact_threshold(10, 0) == 10
        assert tuning.exact_threshold(10, 10_000) == 1_000  # sqrt(100 * 10_000)
        assert tuning.exact_threshold(10, 1_000_000) == 10_000
        assert tuning.exact_threshold(50, 1_000_000) == 14_143  # 200 candidates

    def test_scan_budget_is_clamped(self) -> None:
        tuning = SearchTuning(max_scan_tuples_floor=20_000, max_scan_tuples_ceiling=50_000)
        assert tuning.max_scan_tuples(10, 100) == 20_000
        assert tuning.max_scan_tuples(10, 100_000_000) == 50_000
