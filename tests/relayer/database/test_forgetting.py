"""ForgetStore, tags and TTLs on the index, against real PostgreSQL with an injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from relayer.database.forgetting import ForgetReason, ForgetStore
from relayer.database.jobs import JobQueue, NewJob
from relayer.database.memory_listing import MemoryIndex
from relayer.database.pool import Database, connect
from relayer.database.vector_search import EMBEDDING_DIMENSIONS, search_scope
from relayer.database.vectors import VectorEntry, VectorStore
from relayer.expiry_sweep import ExpirySweep, SweepLimits
from tests.conftest import throwaway_database

pytestmark = pytest.mark.database

ALICE = "0x" + "a" * 64
BOB = "0x" + "b" * 64
START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def vector(seed: int) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).standard_normal(EMBEDDING_DIMENSIONS).astype(np.float32)]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def ids_found(store: VectorStore, owner: str, namespace: str, *, tags: tuple[str, ...] = ()) -> list[str]:
    return sorted(hit.id for hit in await store.search(owner, namespace, vector(0), 50, tags=tags))


class TestForget:
    async def test_forget_removes_the_row_and_a_repeat_answers_the_same(self, database: Database, clock) -> None:
        vectors, forgetting = VectorStore(database, clock=clock), ForgetStore(database, clock=clock)
        await vectors.upsert(VectorEntry("m1", ALICE, "blob-1", vector(1), "notes"))
        await vectors.upsert(VectorEntry("m2", ALICE, "blob-2", vector(2), "notes"))
        first = await forgetting.forget(ALICE, "m1", ForgetReason.FORGOTTEN)
        assert first is not None
        assert (first.memory_id, first.blob_id, first.reason, first.forgotten_at) == ("m1", "blob-1", ForgetReason.FORGOTTEN, START)
        assert await ids_found(vectors, ALICE, "notes") == ["m2"]
        clock.advance(60)
        assert await forgetting.forget(ALICE, "m1", ForgetReason.FORGOTTEN) == first  # unchanged, not re-stamped

    async def test_another_owners_memory_reads_as_absent(self, database: Database, clock) -> None:
        vectors, forgetting = VectorStore(database, clock=clock), ForgetStore(database, clock=clock)
        await vectors.upsert(VectorEntry("m1", ALICE, "blob-1", vector(1)))
        assert await forgetting.forget(BOB, "m1", ForgetReason.FORGOTTEN) is None
        assert await forgetting.forget(BOB, "never-existed", ForgetReason.FORGOTTEN) is None
        assert await ids_found(vectors, ALICE, "default") == ["m1"]
        await forgetting.forget(ALICE, "m1", ForgetReason.FORGOTTEN)
        assert await forgetting.forget(BOB, "m1", ForgetReason.FORGOTTEN) is None  # nor does its tombstone show

    async def test_a_memory_forgotten_while_its_job_runs_is_never_indexed(self, database: Database, clock) -> None:
        vectors, forgetting, jobs = VectorStore(database, clock=clock), ForgetStore(database, clock=clock), JobQueue(database)
        job = (await jobs.create(NewJob(ALICE, "default", b"ciphertext", vector(3)))).job
        tombstone = await forgetting.forget(ALICE, job.id, ForgetReason.FORGOTTEN)
        assert tombstone is not None and tombstone.blob_id is None
        # The job finishes its upload after the forget was acknowledged: the index write is skipped …
        assert await vectors.upsert(VectorEntry(job.id, ALICE, "late-blob", vector(3))) is False
        assert await ids_found(vectors, ALICE, "default") == []
        # … and the tombstone learns the blob, so restore skips it and a repeated forget reports it.
        assert await forgetting.forgotten_blob_ids(ALICE, ["late-blob", "other"]) == {"late-blob"}
        repeated = await forgetting.forget(ALICE, job.id, ForgetReason.FORGOTTEN)
        assert repeated is not None and repeated.blob_id == "late-blob"

    async def test_concurrent_forget_and_index_write_never_leave_the_memory_indexed(self, database: Database, clock) -> None:
        vectors, forgetting, jobs = VectorStore(database, clock=clock), ForgetStore(database, clock=clock), JobQueue(database)
        for round_number in range(10):
            job = (await jobs.create(NewJob(ALICE, "race", b"ciphertext", vector(round_number)))).job
            tombstone, _ = await asyncio.gather(
                forgetting.forget(ALICE, job.id, ForgetReason.FORGOTTEN),
                vectors.upsert(VectorEntry(job.id, ALICE, f"blob-{round_number}", vector(round_number), "race")),
            )
            assert tombstone is not None
        assert await ids_found(vectors, ALICE, "race") == []

    async def test_tombstones_are_pruned_after_retention_unless_their_job_still_runs(self, database: Database, clock) -> None:
        vectors, forgetting, jobs = VectorStore(database, clock=clock), ForgetStore(database, clock=clock), JobQueue(database)
        await vectors.upsert(VectorEntry("indexed", ALICE, "blob-i", vector(1)))
        running = (await jobs.create(NewJob(ALICE, "default", b"ciphertext", vector(2)))).job
        await forgetting.forget(ALICE, "indexed", ForgetReason.FORGOTTEN)
        await forgetting.forget(ALICE, running.id, ForgetReason.FORGOTTEN)
        assert await forgetting.prune(timedelta(days=1), 100) == 0  # too young
        clock.advance(2 * 86_400)
        assert await forgetting.prune(timedelta(days=1), 100) == 1  # the running job's tombstone stays
        assert await forgetting.forget(ALICE, "indexed", ForgetReason.FORGOTTEN) is None
        assert await forgetting.forget(ALICE, running.id, ForgetReason.FORGOTTEN) is not None


class TestReadReplica:
    async def test_a_lagging_replica_never_serves_a_forgotten_memory(self, database: Database, postgres_url, clock) -> None:
        """Two databases on one server stand for the primary and a replica that has not replayed the forget."""
        async with throwaway_database(postgres_url) as replica_url:
            replica = await connect(replica_url, min_size=1, max_size=2, command_timeout=60, migrate=False)
            try:
                store = VectorStore(database, reads=replica, clock=clock)
                for memory_id in ("kept", "gone"):
                    entry = VectorEntry(memory_id, ALICE, f"blob-{memory_id}", vector(1), "notes")
                    await store.upsert(entry)
                    await VectorStore(replica).upsert(entry)  # replicated
                await ForgetStore(database, clock=clock).forget(ALICE, "gone", ForgetReason.FORGOTTEN)  # not yet
                assert await ids_found(VectorStore(replica), ALICE, "notes") == ["gone", "kept"]
                assert await ids_found(store, ALICE, "notes") == ["kept"]
            finally:
                await replica.close()


class TestTags:
    async def test_recall_filter_is_all_of(self, database: Database, clock) -> None:
        store = VectorStore(database, clock=clock)
        await store.upsert(VectorEntry("both", ALICE, "b1", vector(1), "t", tags=("health", "work")))
        await store.upsert(VectorEntry("health", ALICE, "b2", vector(2), "t", tags=("health",)))
        await store.upsert(VectorEntry("none", ALICE, "b3", vector(3), "t"))
        await store.upsert(VectorEntry("bobs", BOB, "b4", vector(4), "t", tags=("health", "work")))
        assert await ids_found(store, ALICE, "t") == ["both", "health", "none"]
        assert await ids_found(store, ALICE, "t", tags=("health",)) == ["both", "health"]
        assert await ids_found(store, ALICE, "t", tags=("health", "work")) == ["both"]
        assert await ids_found(store, ALICE, "t", tags=("missing",)) == []
        [hit] = await store.search(ALICE, "t", vector(1), 1, tags=("work",))
        assert hit.tags == ("health", "work")

    async def test_filter_on_a_large_scope_takes_the_approximate_plan_and_still_filters(self, database: Database) -> None:
        store = VectorStore(database)
        for index in range(60):
            await store.upsert(VectorEntry(f"r{index}", ALICE, f"b{index}", vector(100 + index), "big",
                                           tags=("even",) if index % 2 == 0 else ()))
        from relayer.database.vector_search import SearchTuning

        always_hnsw = SearchTuning(exact_scan_min_rows=1, hnsw_cost_ratio=0.0)
        hits = await search_scope(database, ALICE, "big", vector(0), 10, always_hnsw, tags=("even",))
        assert len(hits) == 10 and all(int(hit.id[1:]) % 2 == 0 for hit in hits)

    async def test_listing_returns_tags(self, database: Database, clock) -> None:
        await VectorStore(database, clock=clock).upsert(VectorEntry("m", ALICE, "b", vector(1), tags=("a", "b")))
        page = await MemoryIndex(database, clock=clock).page(ALICE, None, 10)
        assert [row.tags for row in page.memories] == [("a", "b")]


class TestExpiry:
    async def test_expired_memories_vanish_at_once_and_the_sweep_forgets_them(self, database: Database, clock) -> None:
        vectors, forgetting = VectorStore(database, clock=clock), ForgetStore(database, clock=clock)
        listing = MemoryIndex(database, clock=clock)
        await vectors.upsert(VectorEntry("short", ALICE, "b1", vector(1), expires_at=START + timedelta(seconds=60)))
        await vectors.upsert(VectorEntry("long", ALICE, "b2", vector(2), expires_at=START + timedelta(days=1)))
        await vectors.upsert(VectorEntry("forever", ALICE, "b3", vector(3)))
        assert await ids_found(vectors, ALICE, "default") == ["forever", "long", "short"]
        clock.advance(60)  # expires_at is exclusive: at that instant the memory is gone
        assert await ids_found(vectors, ALICE, "default") == ["forever", "long"]
        assert sorted(row.memory_id for row in (await listing.page(ALICE, None, 10)).memories) == ["forever", "long"]
        sweep = ExpirySweep(forgetting, SweepLimits(interval_seconds=60, batch=10, tombstone_retention_seconds=86_400))
        assert (await sweep.run_once()).forgotten == 1
        tombstone = await forgetting.forget(ALICE, "short", ForgetReason.FORGOTTEN)
        assert tombstone is not None and tombstone.reason is ForgetReason.EXPIRED  # the sweep's answer stands
        assert (await sweep.run_once()).forgotten == 0

    async def test_the_sweep_works_in_bounded_batches(self, database: Database, clock) -> None:
        vectors, forgetting = VectorStore(database, clock=clock), ForgetStore(database, clock=clock)
        for index in range(5):
            await vectors.upsert(VectorEntry(f"e{index}", ALICE, f"b{index}", vector(index), expires_at=START))
        sweep = ExpirySweep(forgetting, SweepLimits(interval_seconds=60, batch=2, tombstone_retention_seconds=86_400))
        assert [(await sweep.run_once()).forgotten for _ in range(4)] == [2, 2, 1, 0]

    async def test_the_background_loop_runs_rounds_until_stopped(self, database: Database, clock) -> None:
        vectors, forgetting = VectorStore(database, clock=clock), ForgetStore(database, clock=clock)
        await vectors.upsert(VectorEntry("gone", ALICE, "b", vector(1), expires_at=START))
        rounds = asyncio.Event()

        async def sleep(_: float) -> None:
            rounds.set()
            await asyncio.Event().wait()  # one round, then park until cancelled

        sweep = ExpirySweep(forgetting, SweepLimits(interval_seconds=60, batch=10, tombstone_retention_seconds=86_400), sleep=sleep)
        sweep.start()
        await asyncio.wait_for(rounds.wait(), 30)
        await sweep.stop()
        assert await ids_found(vectors, ALICE, "default") == []
        assert await forgetting.forgotten_blob_ids(ALICE, ["b"]) == {"b"}
