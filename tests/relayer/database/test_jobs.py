from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from relayer.database.errors import InvalidVector, LeaseLost
from relayer.database.jobs import STALE_JOB_MESSAGE, JobKind, JobQueue, JobStatus, NewJob
from relayer.database.pool import Database

pytestmark = pytest.mark.database

ALICE = "0x" + "a" * 64
BOB = "0x" + "b" * 64
EMBEDDING = np.linspace(0.1, 1.0, 1536, dtype=np.float32)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _new(owner: str = ALICE, key: str | None = None, kind: JobKind = JobKind.REMEMBER) -> NewJob:
    return NewJob(owner=owner, namespace="notes", ciphertext=b"\x00sealed", embedding=EMBEDDING, kind=kind, idempotency_key=key)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(database: Database, clock: Clock) -> JobQueue:
    return JobQueue(database, clock=clock)


class TestCreate:
    async def test_remember_starts_running_and_analyze_pending(self, queue: JobQueue) -> None:
        remember = (await queue.create(_new())).job
        analyze = (await queue.create(_new(kind=JobKind.ANALYZE))).job
        assert (remember.status, analyze.status) == (JobStatus.RUNNING, JobStatus.PENDING)
        assert remember.ciphertext == b"\x00sealed"
        assert remember.embedding is not None and len(remember.embedding) == 1536
        assert remember.attempts == 0 and remember.lease_owner is None

    async def test_same_idempotency_key_returns_the_existing_job(self, queue: JobQueue) -> None:
        first = await queue.create(_new(key="k1"))
        again = await queue.create(_new(key="k1"))
        assert first.created and not again.created
        assert again.job.id == first.job.id

    async def test_idempotency_key_is_per_owner(self, queue: JobQueue) -> None:
        alice = await queue.create(_new(ALICE, key="k1"))
        bob = await queue.create(_new(BOB, key="k1"))
        assert bob.created and bob.job.id != alice.job.id

    async def test_concurrent_duplicates_make_one_job(self, queue: JobQueue) -> None:
        results = await asyncio.gather(*(queue.create(_new(key="same")) for _ in range(8)))
        assert len({result.job.id for result in results}) == 1
        assert sum(result.created for result in results) == 1

    async def test_without_key_every_call_is_a_new_job(self, queue: JobQueue) -> None:
        first, second = await queue.create(_new()), await queue.create(_new())
        assert first.job.id != second.job.id

    async def test_bad_embedding_is_refused(self, queue: JobQueue) -> None:
        with pytest.raises(InvalidVector, match="dimensions"):
            await queue.create(NewJob(ALICE, "notes", b"c", [1.0, 2.0]))


class TestRead:
    async def test_get_hides_foreign_and_missing_jobs(self, queue: JobQueue) -> None:
        job = (await queue.create(_new())).job
        assert (await queue.get(ALICE, job.id)) == job
        assert await queue.get(BOB, job.id) is None
        assert await queue.get(ALICE, "missing") is None

    async def test_statuses_only_reports_the_owners_jobs(self, queue: JobQueue) -> None:
        mine = (await queue.create(_new())).job
        theirs = (await queue.create(_new(BOB))).job
        found = await queue.statuses(ALICE, [mine.id, theirs.id, "missing", mine.id])
        assert set(found) == {mine.id}
        assert found[mine.id].status is JobStatus.RUNNING
        assert await queue.statuses(ALICE, []) == {}


class TestClaim:
    async def test_claim_leases_oldest_first_and_counts_attempts(self, queue: JobQueue, clock: Clock) -> None:
        first = (await queue.create(_new())).job
        clock.advance(1)
        second = (await queue.create(_new())).job
        claimed = await queue.claim("worker-1", 30)
        assert claimed is not None and claimed.id == first.id
        assert (claimed.lease_owner, claimed.attempts) == ("worker-1", 1)
        assert claimed.lease_until == clock.now + timedelta(seconds=30)
        assert (await queue.claim("worker-2", 30)).id == second.id  # type: ignore[union-attr]
        assert await queue.claim("worker-3", 30) is None

    async def test_concurrent_claimers_never_share_a_job(self, queue: JobQueue) -> None:
        created = {(await queue.create(_new())).job.id for _ in range(6)}
        claims = await asyncio.gather(*(queue.claim(f"worker-{i}", 30) for i in range(10)))
        taken = [job.id for job in claims if job is not None]
        assert sorted(taken) == sorted(created)

    async def test_skip_locked_passes_over_a_row_being_claimed(self, database: Database, queue: JobQueue) -> None:
        locked = (await queue.create(_new())).job
        free = (await queue.create(_new())).job
        async with database.transaction() as connection:
            await connection.execute("SELECT 1 FROM remember_jobs WHERE id = $1 FOR UPDATE", locked.id)
            claimed = await asyncio.wait_for(queue.claim("worker-2", 30), timeout=5)
        assert claimed is not None and claimed.id == free.id

    async def test_finished_jobs_are_never_claimed(self, queue: JobQueue) -> None:
        job = (await queue.create(_new())).job
        claimed = await queue.claim("worker-1", 30)
        assert claimed is not None and claimed.id == job.id
        await queue.mark_done(claimed)
        assert await queue.claim("worker-1", 30) is None

    async def test_max_attempts_filters_exhausted_jobs(self, queue: JobQueue, clock: Clock) -> None:
        await queue.create(_new())
        await queue.claim("worker-1", 1)
        clock.advance(2)
        assert await queue.claim("worker-2", 1, max_attempts=1) is None
        assert await queue.claim("worker-2", 1, max_attempts=2) is not None

    async def test_lease_must_be_positive(self, queue: JobQueue) -> None:
        with pytest.raises(ValueError, match="positive"):
            await queue.claim("worker-1", 0)


class TestCrashRecovery:
    async def test_expired_lease_is_reclaimed_at_the_recorded_stage(self, queue: JobQueue, clock: Clock) -> None:
        await queue.create(_new())
        crashed = await queue.claim("worker-1", 30)
        assert crashed is not None
        crashed = await queue.mark_uploaded(crashed, "blob-1", "0xobject")
        # worker-1 dies here. Before the lease runs out nobody else may take the job.
        clock.advance(29)
        assert await queue.claim("worker-2", 30) is None
        clock.advance(2)
        resumed = await queue.claim("worker-2", 30)
        assert resumed is not None and resumed.id == crashed.id
        assert (resumed.status, resumed.blob_id, resumed.object_id) == (JobStatus.UPLOADED, "blob-1", "0xobject")
        assert resumed.attempts == 2 and resumed.ciphertext == b"\x00sealed"
        # The original worker comes back to life: its late writes are refused.
        with pytest.raises(LeaseLost, match="no longer leased to worker-1"):
            await queue.mark_done(crashed)
        done = await queue.mark_done(resumed)
        assert done.status is JobStatus.DONE
        assert (done.ciphertext, done.embedding, done.lease_owner) == (None, None, None)

    async def test_unclaimed_job_cannot_be_transitioned(self, queue: JobQueue) -> None:
        job = (await queue.create(_new())).job
        with pytest.raises(LeaseLost, match="not claimed"):
            await queue.mark_running(job)


class TestTransitions:
    async def test_happy_path(self, queue: JobQueue) -> None:
        await queue.create(_new(kind=JobKind.ANALYZE))
        job = await queue.claim("worker-1", 30)
        assert job is not None and job.status is JobStatus.PENDING
        job = await queue.mark_running(job)
        job = await queue.mark_uploaded(job, "blob-9", None)
        assert (job.status, job.blob_id, job.lease_owner) == (JobStatus.UPLOADED, "blob-9", "worker-1")
        job = await queue.mark_done(job)
        assert job.status is JobStatus.DONE and job.blob_id == "blob-9"
        with pytest.raises(LeaseLost):
            await queue.mark_failed(job, "too late")

    async def test_mark_failed_records_error_and_drops_payload(self, queue: JobQueue) -> None:
        await queue.create(_new())
        job = await queue.claim("worker-1", 30)
        assert job is not None
        failed = await queue.mark_failed(job, "Quota Exceeded: nope")
        assert (failed.status, failed.error_msg, failed.ciphertext) == (JobStatus.FAILED, "Quota Exceeded: nope", None)

    async def test_release_delays_the_retry(self, queue: JobQueue, clock: Clock) -> None:
        await queue.create(_new())
        job = await queue.claim("worker-1", 30)
        assert job is not None
        released = await queue.release(job, "walrus 503", retry_after_seconds=10)
        assert (released.lease_owner, released.error_msg, released.status) == (None, "walrus 503", JobStatus.RUNNING)
        assert await queue.claim("worker-2", 30) is None
        clock.advance(10)
        again = await queue.claim("worker-2", 30)
        assert again is not None and again.attempts == 2
        with pytest.raises(LeaseLost):
            await queue.release(job, "stale worker", 0)
        with pytest.raises(ValueError, match="must not be negative"):
            await queue.release(again, "x", -1)


class TestGivingUp:
    async def test_fail_exhausted_fails_only_unleased_jobs_over_the_limit(self, queue: JobQueue, clock: Clock) -> None:
        exhausted = (await queue.create(_new())).job
        for _ in range(3):
            job = await queue.claim("worker-1", 5)
            assert job is not None and job.id == exhausted.id
            await queue.release(job, "upload failed", 0)
        fresh = (await queue.create(_new())).job
        leased = await queue.claim("worker-2", 60, max_attempts=3)  # skips the exhausted job
        assert leased is not None and leased.id == fresh.id
        assert await queue.fail_exhausted(3) == 1
        failed = await queue.get(ALICE, exhausted.id)
        assert failed is not None and failed.status is JobStatus.FAILED
        assert failed.error_msg == "gave up after 3 attempts: upload failed"
        assert (await queue.get(ALICE, fresh.id)).status is JobStatus.RUNNING  # type: ignore[union-attr]

    async def test_sweep_fails_stale_unleased_jobs(self, queue: JobQueue, clock: Clock) -> None:
        stale = (await queue.create(_new())).job
        pending = (await queue.create(_new(kind=JobKind.ANALYZE))).job
        clock.advance(601)
        busy = (await queue.create(_new())).job
        assert await queue.sweep_stale(600) == 1
        swept = await queue.get(ALICE, stale.id)
        assert swept is not None and (swept.status, swept.error_msg) == (JobStatus.FAILED, STALE_JOB_MESSAGE)
        assert (await queue.get(ALICE, pending.id)).status is JobStatus.PENDING  # type: ignore[union-attr]
        assert (await queue.get(ALICE, busy.id)).status is JobStatus.RUNNING  # type: ignore[union-attr]

    async def test_sweep_spares_a_job_whose_lease_is_live(self, queue: JobQueue, clock: Clock) -> None:
        await queue.create(_new())
        job = await queue.claim("worker-1", 3600)
        assert job is not None
        clock.advance(700)
        assert await queue.sweep_stale(600) == 0
