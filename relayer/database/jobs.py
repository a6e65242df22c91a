"""A durable job queue on ``remember_jobs``: leases instead of in-memory state.

Life of a job::

    create ──► pending (analyze) / running (remember)
    claim  ──► leased to one worker until lease_until; attempts += 1
               the worker resumes at the recorded stage: upload only while blob_id is unset,
               then mark_uploaded, upsert the vector (idempotent on the job id), mark_done
    crash  ──► the lease expires and the next claim picks the job up where it stopped
    release(error, retry_after) ──► unleased, not claimable before retry_after
    mark_failed / fail_exhausted / sweep_stale ──► failed (terminal, payload cleared)

Transitions by a worker whose lease is gone raise ``LeaseLost``: a slow worker can never overwrite
the progress of the worker that took the job over. Timestamps come from the injected clock, so
all relayers sharing the database should run NTP-synced clocks (leases are tens of seconds).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import asyncpg

from relayer.database.errors import LeaseLost
from relayer.database.pool import Database, affected_rows
from relayer.database.vector_search import as_embedding


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    UPLOADED = "uploaded"
    DONE = "done"
    FAILED = "failed"


class JobKind(StrEnum):
    REMEMBER = "remember"
    ANALYZE = "analyze"


ACTIVE_STATUSES = (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.UPLOADED)
STALE_JOB_MESSAGE = "stale/orphaned remember job"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewJob:
    owner: str
    namespace: str
    ciphertext: bytes  # the Seal-encrypted memory; the queue never sees plaintext
    embedding: Sequence[float]
    kind: JobKind = JobKind.REMEMBER
    importance: float = 0.5
    agent_id: str | None = None
    idempotency_key: str | None = None
    tags: tuple[str, ...] = ()  # copied to the index row
    expires_at: datetime | None = None  # the memory's TTL end, copied to the index row


@dataclass(frozen=True)
class Job:
    id: str
    owner: str
    namespace: str
    kind: JobKind
    status: JobStatus
    blob_id: str | None
    object_id: str | None
    error_msg: str | None
    ciphertext: bytes | None
    embedding: tuple[float, ...] | None
    importance: float
    agent_id: str | None
    idempotency_key: str | None
    attempts: int
    lease_owner: str | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    tags: tuple[str, ...] = ()
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Enqueued:
    job: Job
    created: bool  # False: an earlier request with the same idempotency key made this job


@dataclass(frozen=True)
class JobSummary:
    job_id: str
    status: JobStatus
    blob_id: str | None
    error: str | None


_INSERT = """
INSERT INTO remember_jobs (id, owner, namespace, kind, status, ciphertext, embedding, importance,
                           agent_id, idempotency_key, created_at, updated_at, tags, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13)
ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *
"""

# SKIP LOCKED: concurrent claimers each take a different row instead of queueing behind one.
_CLAIM = """
UPDATE remember_jobs SET lease_owner = $1, lease_until = $2 + make_interval(secs => $3),
                         attempts = attempts + 1, updated_at = $2
WHERE id = (
    SELECT id FROM remember_jobs
    WHERE status IN ('pending', 'running', 'uploaded')
      AND (lease_until IS NULL OR lease_until <= $2)
      AND ($4::integer IS NULL OR attempts < $4)
    ORDER BY created_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING *
"""

# Guard shared by every worker transition: the caller must still hold the lease.
_HELD = "id = $1 AND lease_owner = $2 AND lease_until > $3 AND status IN ('pending', 'running', 'uploaded')"


class JobQueue:
    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], datetime] = _utc_now,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._database = database
        self._clock = clock
        self._new_id = new_id

    async def create(self, new: NewJob) -> Enqueued:
        """Store a job; with an idempotency key already used by this owner, return that job instead."""
        embedding = as_embedding(new.embedding)
        initial = JobStatus.PENDING if new.kind is JobKind.ANALYZE else JobStatus.RUNNING
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                _INSERT, self._new_id(), new.owner, new.namespace, new.kind.value, initial.value,
                new.ciphertext, embedding, float(new.importance), new.agent_id, new.idempotency_key,
                self._clock(), list(new.tags), new.expires_at,
            )
            if row is not None:
                return Enqueued(_job(row), created=True)
            # ON CONFLICT waited for the other insert to commit, so this statement sees its row.
            row = await connection.fetchrow(
                "SELECT * FROM remember_jobs WHERE owner = $1 AND idempotency_key = $2", new.owner, new.idempotency_key
            )
        return Enqueued(_job(row), created=False)

    async def get(self, owner: str, job_id: str) -> Job | None:
        """The job if it exists and belongs to ``owner``; otherwise None (never reveal foreign jobs)."""
        async with self._database.connection() as connection:
            row = await connection.fetchrow("SELECT * FROM remember_jobs WHERE id = $1 AND owner = $2", job_id, owner)
        return None if row is None else _job(row)

    async def by_idempotency_keys(self, owner: str, keys: Collection[str]) -> dict[str, JobSummary]:
        """``{key: job}`` for those of ``keys`` this owner already used (a fast path: ``create`` decides)."""
        if not keys:
            return {}
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                "SELECT idempotency_key, id, status, blob_id, error_msg FROM remember_jobs"
                " WHERE owner = $1 AND idempotency_key = ANY($2::text[])",
                owner, list(keys),
            )
        return {
            row["idempotency_key"]: JobSummary(row["id"], JobStatus(row["status"]), row["blob_id"], row["error_msg"])
            for row in rows
        }

    async def statuses(self, owner: str, job_ids: Collection[str]) -> dict[str, JobSummary]:
        """Summaries of the owner's jobs among ``job_ids``; unknown and foreign ids are absent."""
        if not job_ids:
            return {}
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                "SELECT id, status, blob_id, error_msg FROM remember_jobs WHERE owner = $1 AND id = ANY($2::text[])",
                owner, list(job_ids),
            )
        return {
            row["id"]: JobSummary(row["id"], JobStatus(row["status"]), row["blob_id"], row["error_msg"]) for row in rows
        }

    async def claim(self, lease_owner: str, lease_seconds: float, *, max_attempts: int | None = None) -> Job | None:
        """Lease the oldest unfinished job whose lease is free or expired; None when there is none."""
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        async with self._database.connection() as connection:
            row = await connection.fetchrow(_CLAIM, lease_owner, self._clock(), float(lease_seconds), max_attempts)
        return None if row is None else _job(row)

    async def mark_running(self, job: Job) -> Job:
        return await self._transition(job, "status = 'running'")

    async def mark_uploaded(self, job: Job, blob_id: str, object_id: str | None) -> Job:
        return await self._transition(job, "status = 'uploaded', blob_id = $5, object_id = $6", blob_id, object_id)

    async def mark_done(self, job: Job) -> Job:
        """Final success: the payload is on Walrus and indexed, so the queue forgets it."""
        return await self._transition(
            job,
            "status = 'done', error_msg = NULL, ciphertext = NULL, embedding = NULL,"
            " lease_owner = NULL, lease_until = NULL",
        )

    async def mark_failed(self, job: Job, error: str) -> Job:
        return await self._transition(
            job,
            "status = 'failed', error_msg = $5, ciphertext = NULL, embedding = NULL,"
            " lease_owner = NULL, lease_until = NULL",
            error,
        )

    async def release(self, job: Job, error: str, retry_after_seconds: float) -> Job:
        """Give the job back after a transient failure; nobody may claim it for ``retry_after_seconds``."""
        if retry_after_seconds < 0:
            raise ValueError("retry_after_seconds must not be negative")
        retry_at = self._clock() + timedelta(seconds=retry_after_seconds)
        return await self._transition(
            job, "error_msg = $5, lease_owner = NULL, lease_until = $6", error, retry_at
        )

    async def fail_exhausted(self, max_attempts: int) -> int:
        """Fail unleased unfinished jobs that already used ``max_attempts`` claims; returns how many."""
        now = self._clock()
        async with self._database.connection() as connection:
            status = await connection.execute(
                """
                UPDATE remember_jobs
                SET status = 'failed', updated_at = $2, lease_owner = NULL, lease_until = NULL,
                    ciphertext = NULL, embedding = NULL,
                    error_msg = 'gave up after ' || attempts || ' attempts'
                                || coalesce(': ' || error_msg, '')
                WHERE status IN ('pending', 'running', 'uploaded') AND attempts >= $1
                  AND (lease_until IS NULL OR lease_until <= $2)
                """,
                max_attempts, now,
            )
        return affected_rows(status)

    async def sweep_stale(self, stale_after_seconds: float) -> int:
        """Fail running/uploaded jobs untouched for ``stale_after_seconds`` and not leased (upstream's sweeper)."""
        now = self._clock()
        async with self._database.connection() as connection:
            status = await connection.execute(
                """
                UPDATE remember_jobs
                SET status = 'failed', error_msg = $3, updated_at = $1, lease_owner = NULL,
                    lease_until = NULL, ciphertext = NULL, embedding = NULL
                WHERE status IN ('running', 'uploaded') AND updated_at < $2
                  AND (lease_until IS NULL OR lease_until <= $1)
                """,
                now, now - timedelta(seconds=stale_after_seconds), STALE_JOB_MESSAGE,
            )
        return affected_rows(status)

    async def _transition(self, job: Job, assignments: str, *values: object) -> Job:
        if job.lease_owner is None:
            raise LeaseLost(f"job {job.id} was not claimed")
        now = self._clock()
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                # assignments are literals written in this module; values are bind parameters
                f"UPDATE remember_jobs SET {assignments}, updated_at = $4 WHERE {_HELD} RETURNING *",  # noqa: S608
                job.id, job.lease_owner, now, now, *values,
            )
        if row is None:
            raise LeaseLost(f"job {job.id} is no longer leased to {job.lease_owner}")
        return _job(row)


def _job(row: asyncpg.Record) -> Job:
    embedding = row["embedding"]
    return Job(
        id=row["id"],
        owner=row["owner"],
        namespace=row["namespace"],
        kind=JobKind(row["kind"]),
        status=JobStatus(row["status"]),
        blob_id=row["blob_id"],
        object_id=row["object_id"],
        error_msg=row["error_msg"],
        ciphertext=None if row["ciphertext"] is None else bytes(row["ciphertext"]),
        embedding=None if embedding is None else tuple(float(value) for value in embedding.to_list()),
        importance=float(row["importance"]),
        agent_id=row["agent_id"],
        idempotency_key=row["idempotency_key"],
        attempts=row["attempts"],
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        tags=tuple(row["tags"]),
        expires_at=row["expires_at"],
    )
