from __future__ import annotations

import numpy as np
import pytest

from relayer.database.errors import ConstraintViolation, InvalidLimit, InvalidVector
from relayer.database.pool import Database
from relayer.database.vector_search import EMBEDDING_DIMENSIONS
from relayer.database.vectors import VectorEntry, VectorStore

pytestmark = pytest.mark.database

ALICE = "0x" + "a" * 64
BOB = "0x" + "b" * 64


def _vectors(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, EMBEDDING_DIMENSIONS)).astype(np.float32)


def _exact_top(vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    normalized = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    distances = 1.0 - normalized @ (query / np.linalg.norm(query))
    return [int(index) for index in np.argsort(distances, kind="stable")[:k]]


async def _store_all(store: VectorStore, owner: str, namespace: str, vectors: np.ndarray, prefix: str) -> None:
    for index, vector in enumerate(vectors):
        await store.upsert(VectorEntry(f"{prefix}-{index}", owner, f"blob-{prefix}-{index}", vector, namespace, 100 + index))


class TestUpsert:
    async def test_replaying_an_entry_keeps_one_row(self, database: Database) -> None:
        store = VectorStore(database)
        vector = _vectors(1, 1)[0]
        entry = VectorEntry("job-1", ALICE, "blob-1", vector, "notes", 512, 0.9)
        await store.upsert(entry)
        await store.upsert(entry)
        stats = await store.stats(ALICE, "notes")
        assert (stats.memory_count, stats.storage_bytes) == (1, 512)
        hits = await store.search(ALICE, "notes", vector, 5)
        assert [(hit.id, hit.blob_id, hit.blob_size) for hit in hits] == [("job-1", "blob-1", 512)]
        assert hits[0].importance == pytest.approx(0.9)
        assert hits[0].distance == pytest.approx(0.0, abs=1e-5)

    async def test_upsert_replaces_blob_of_same_id(self, database: Database) -> None:
        store = VectorStore(database)
        vector = _vectors(1, 2)[0]
        await store.upsert(VectorEntry("job-1", ALICE, "blob-old", vector))
        await store.upsert(VectorEntry("job-1", ALICE, "blob-new", vector, blob_size_bytes=7))
        hits = await store.search(ALICE, "default", vector, 5)
        assert [hit.blob_id for hit in hits] == ["blob-new"]

    async def test_id_of_another_owner_is_refused(self, database: Database) -> None:
        store = VectorStore(database)
        vector = _vectors(1, 3)[0]
        await store.upsert(VectorEntry("job-1", ALICE, "blob-a", vector))
        with pytest.raises(ConstraintViolation, match="another owner"):
            await store.upsert(VectorEntry("job-1", BOB, "blob-b", vector))
        assert [hit.blob_id for hit in await store.search(ALICE, "default", vector, 5)] == ["blob-a"]
        assert await store.search(BOB, "default", vector, 5) == []

    @pytest.mark.parametrize(
        ("embedding", "message"),
        [
            ([0.1] * 10, "1536 dimensions"),
            ([0.0] * EMBEDDING_DIMENSIONS, "zero vector"),
            ([float("nan")] + [0.1] * (EMBEDDING_DIMENSIONS - 1), "NaN or infinite"),
            (["x"] * EMBEDDING_DIMENSIONS, "not a list of numbers"),
        ],
    )
    async def test_invalid_embeddings_are_refused(self, database: Database, embedding: list, message: str) -> None:
        with pytest.raises(InvalidVector, match=message):
            await VectorStore(database).upsert(VectorEntry("job-1", ALICE, "blob", embedding))

    async def test_negative_size_is_refused(self, database: Database) -> None:
        with pytest.raises(ValueError, match="must not be negative"):
            await VectorStore(database).upsert(VectorEntry("job-1", ALICE, "blob", _vectors(1, 4)[0], blob_size_bytes=-1))


class TestSearch:
    async def test_small_scope_is_exact(self, database: Database) -> None:
        store = VectorStore(database)
        vectors = _vectors(300, 10)
        await _store_all(store, ALICE, "notes", vectors, "a")
        await _store_all(store, ALICE, "other", _vectors(100, 11), "o")  # same owner, other namespace
        for seed in range(5):
            query = _vectors(1, 100 + seed)[0]
            hits = await store.search(ALICE, "notes", query, 10)
            assert [hit.id for hit in hits] == [f"a-{index}" for index in _exact_top(vectors, query, 10)]
            distances = [hit.distance for hit in hits]
            assert distances == sorted(distances)

    async def test_limit_larger_than_scope_returns_whole_scope(self, database: Database) -> None:
        store = VectorStore(database)
        await _store_all(store, ALICE, "notes", _vectors(3, 12), "a")
        assert len(await store.search(ALICE, "notes", _vectors(1, 13)[0], 100)) == 3

    async def test_empty_scope_returns_nothing(self, database: Database) -> None:
        assert await VectorStore(database).search(ALICE, "nothing", _vectors(1, 14)[0], 10) == []

    async def test_limit_below_one_is_refused(self, database: Database) -> None:
        with pytest.raises(InvalidLimit, match="at least 1"):
            await VectorStore(database).search(ALICE, "notes", _vectors(1, 15)[0], 0)

    async def test_query_vector_is_validated(self, database: Database) -> None:
        with pytest.raises(InvalidVector, match="dimensions"):
            await VectorStore(database).search(ALICE, "notes", [1.0, 2.0], 10)


class TestOwnerIsolation:
    async def test_no_query_sees_or_touches_another_owners_rows(self, database: Database) -> None:
        store = VectorStore(database)
        shared = _vectors(4, 20)
        for index, vector in enumerate(shared):
            await store.upsert(VectorEntry(f"a-{index}", ALICE, f"blob-{index}", vector, "notes", 1000))
            await store.upsert(VectorEntry(f"b-{index}", BOB, f"blob-{index}", vector, "notes", 10))
        assert {hit.id for hit in await store.search(BOB, "notes", shared[0], 10)} == {f"b-{i}" for i in range(4)}
        assert await store.blob_ids_in(BOB, "notes", ["blob-0", "blob-9"]) == {"blob-0"}
        assert await store.storage_used(BOB) == 40
        assert (await store.stats(BOB, "notes")).storage_bytes == 40
        assert await store.delete_by_blob(BOB, "blob-0") == 1
        assert await store.forget(BOB, "notes") == 3
        # Alice's rows with the same blob ids and namespace are untouched.
        assert (await store.stats(ALICE, "notes")).memory_count == 4
        assert await store.storage_used(ALICE) == 4000
        assert await store.blob_ids_in(ALICE, "notes", [f"blob-{i}" for i in range(4)]) == {f"blob-{i}" for i in range(4)}


class TestBookkeeping:
    async def test_blob_ids_in_filters_by_namespace(self, database: Database) -> None:
        store = VectorStore(database)
        vectors = _vectors(2, 30)
        await store.upsert(VectorEntry("1", ALICE, "blob-x", vectors[0], "notes"))
        await store.upsert(VectorEntry("2", ALICE, "blob-y", vectors[1], "work"))
        assert await store.blob_ids_in(ALICE, "notes", ["blob-x", "blob-y", "blob-z"]) == {"blob-x"}
        assert await store.blob_ids_in(ALICE, "notes", []) == set()

    async def test_delete_by_blob_removes_every_row_of_that_blob(self, database: Database) -> None:
        store = VectorStore(database)
        vectors = _vectors(3, 31)
        await store.upsert(VectorEntry("1", ALICE, "blob-x", vectors[0], "notes"))
        await store.upsert(VectorEntry("2", ALICE, "blob-x", vectors[1], "work"))
        await store.upsert(VectorEntry("3", ALICE, "blob-y", vectors[2], "notes"))
        assert await store.delete_by_blob(ALICE, "blob-x") == 2
        assert await store.delete_by_blob(ALICE, "blob-x") == 0
        assert (await store.stats(ALICE, "notes")).memory_count == 1

    async def test_forget_counts_and_only_clears_the_namespace(self, database: Database) -> None:
        store = VectorStore(database)
        await _store_all(store, ALICE, "notes", _vectors(5, 32), "n")
        await _store_all(store, ALICE, "work", _vectors(2, 33), "w")
        assert await store.forget(ALICE, "notes") == 5
        assert await store.forget(ALICE, "notes") == 0
        assert (await store.stats(ALICE, "work")).memory_count == 2

    async def test_stats_and_storage_used(self, database: Database) -> None:
        store = VectorStore(database)
        await _store_all(store, ALICE, "notes", _vectors(3, 34), "n")  # sizes 100, 101, 102
        await _store_all(store, ALICE, "work", _vectors(2, 35), "w")  # sizes 100, 101
        stats = await store.stats(ALICE, "notes")
        assert (stats.memory_count, stats.storage_bytes) == (3, 303)
        assert await store.storage_used(ALICE) == 504
        empty = await store.stats(ALICE, "nothing")
        assert (empty.memory_count, empty.storage_bytes) == (0, 0)
