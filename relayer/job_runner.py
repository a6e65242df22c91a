"""Background workers that carry remember jobs from "encrypted and queued" to "indexed".

A job row already holds the Seal ciphertext and the embedding when the request returns 202, so a crash
loses nothing. Workers claim jobs with a lease; a job whose worker died is claimed again when its
lease expires and resumes at its recorded stage (MemoryStorage does the work of each stage):
  pending/running → quota check → upload (tag + transfer) → ``uploaded`` (blob id recorded)
  uploaded        → index row upsert (id = job id, idempotent) → ``done`` (ciphertext dropped)
Uploads are idempotent per job in the sidecar, so a resumed job never creates a second blob.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass

from memwal_common.stage_timing import DISABLED as STAGES_OFF
from memwal_common.stage_timing import StageTimer
from relayer.database.errors import DatabaseError, QuotaExceeded
from relayer.database.jobs import Job, JobQueue, NewJob
from relayer.errors import Outage, SidecarRejected
from relayer.memory_storage import MemoryRecord, MemoryStorage
from relayer.observability import Metrics

logger = logging.getLogger("memwal.jobs")

IDLE_POLL_SECONDS = 1.0
SWEEP_INTERVAL_SECONDS = 60.0
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0


class WorkSignal:
    """Wakes one idle worker per queued job. (Waking every idle worker made each run a claim query that
    found nothing: with 32 workers, 31 empty ``FOR UPDATE SKIP LOCKED`` round trips per job.) A signal sent
    while no worker waits is kept, up to ``limit``, so a job queued between a worker's empty claim and its
    wait is not left for the idle poll."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pending = 0
        self._changed = asyncio.Condition()

    async def notify(self) -> None:
        async with self._changed:
            self._pending = min(self._pending + 1, self._limit)
            self._changed.notify(1)

    async def wait(self, timeout_seconds: float) -> None:
        """Return when signalled (taking the signal), or after ``timeout_seconds`` without one."""
        async with self._changed:
            if self._pending == 0:
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout_seconds)
                except TimeoutError:
                    return
            if self._pending > 0:
                self._pending -= 1


@dataclass(frozen=True)
class JobLimits:
    concurrency: int  # workers
    lease_seconds: int  # a crashed worker's job is claimed again after this
    max_attempts: int  # then the job is failed


def _record(job: Job) -> MemoryRecord:
    return MemoryRecord(
        entry_id=job.id,
        owner=job.owner,
        namespace=job.namespace,
        ciphertext=job.ciphertext or b"",
        embedding=job.embedding or (),
        importance=job.importance,
        agent_id=job.agent_id,
        tags=job.tags,
        expires_at=job.expires_at,
    )


class JobRunner:
    def __init__(self, *, jobs: JobQueue, storage: MemoryStorage, metrics: Metrics, limits: JobLimits,
                 stage_timer: StageTimer = STAGES_OFF) -> None:
        self._jobs = jobs
        self._stage_timer = stage_timer
        self._storage = storage
        self._metrics = metrics
        self._limits = limits
        self._work = WorkSignal(limits.concurrency)
        self._tasks: list[asyncio.Task[None]] = []
        self._lease_owner = f"relayer-{uuid.uuid4().hex[:12]}"
        self._stopping = False

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not self._stopping and all(not t.done() for t in self._tasks)

    async def submit(self, new_job: NewJob) -> Job:
        """Queue a job (idempotent per owner + key) and wake a worker."""
        started = time.perf_counter()
        enqueued = await self._jobs.create(new_job)
        self._stage_timer.record("job.enqueue", enqueued.job.id, time.perf_counter() - started)
        await self._work.notify()
        return enqueued.job

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(), name=f"job-worker-{i}") for i in range(self._limits.concurrency)]
        self._tasks.append(asyncio.create_task(self._sweeper(), name="job-sweeper"))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _worker(self) -> None:
        while not self._stopping:
            job: Job | None
            try:
                job = await self._jobs.claim(self._lease_owner, self._limits.lease_seconds, max_attempts=self._limits.max_attempts)
            except DatabaseError as exc:
                logger.warning("job claim failed: %s", type(exc).__name__)
                job = None
                await asyncio.sleep(IDLE_POLL_SECONDS)
            if job is None:
                await self._work.wait(IDLE_POLL_SECONDS)  # other replicas' jobs: found by the poll
                continue
            await self.process(job)

    async def process(self, job: Job) -> None:
        jobs = self._jobs
        stage = self._stage_timer.stage
        if job.attempts == 1:  # the claim stamped updated_at with the queue's clock, as it did created_at
            self._stage_timer.record("job.queued", job.id, (job.updated_at - job.created_at).total_seconds())
        try:
            with stage("job.total", job.id):
                blob_id = job.blob_id
                if not blob_id:
                    if job.ciphertext is None:
                        await jobs.mark_failed(job, "job lost its ciphertext before upload")
                        return
                    with stage("job.forgotten_check", job.id):
                        forgotten = await self._storage.is_forgotten(_record(job))
                    if forgotten:  # forgotten while queued: nothing goes to Walrus
                        await jobs.mark_done(job)
                        self._metrics.jobs.labels("forgotten").inc()
                        return
                    with stage("job.upload", job.id):  # quota check + the sidecar's upload (its own stages)
                        upload = await self._storage.upload(_record(job))
                    blob_id = upload.blob_id
                    with stage("job.mark_uploaded", job.id):
                        job = await jobs.mark_uploaded(job, upload.blob_id, upload.object_id)
                with stage("job.index", job.id):
                    await self._storage.index(_record(job), blob_id)
                with stage("job.mark_done", job.id):
                    await jobs.mark_done(job)
            self._metrics.jobs.labels("done").inc()
        except QuotaExceeded as exc:
            await self._safely(jobs.mark_failed(job, f"Quota Exceeded: {exc}"))
            self._metrics.jobs.labels("quota").inc()
        except SidecarRejected as exc:
            # The sidecar refused the request itself: retrying cannot help.
            await self._safely(jobs.mark_failed(job, f"BadInput: {exc.message}"))
            self._metrics.jobs.labels("failed").inc()
        except (Outage, DatabaseError) as exc:
            attempts = job.attempts
            if attempts >= self._limits.max_attempts:
                await self._safely(jobs.mark_failed(job, f"gave up after {attempts} attempts: {exc}"))
                self._metrics.jobs.labels("failed").inc()
            else:
                delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempts - 1))
                await self._safely(jobs.release(job, str(exc), delay))
                self._metrics.jobs.labels("retry").inc()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("job %s failed unexpectedly", job.id)
            await self._safely(jobs.release(job, "internal error", RETRY_MAX_SECONDS))

    @staticmethod
    async def _safely(operation: Awaitable[object]) -> None:
        try:
            await operation
        except DatabaseError as exc:
            logger.warning("job bookkeeping failed (lease expiry will retry): %s", type(exc).__name__)

    async def _sweeper(self) -> None:
        while not self._stopping:
            try:
                await self._jobs.fail_exhausted(self._limits.max_attempts)
            except DatabaseError as exc:
                logger.warning("job sweep failed: %s", type(exc).__name__)
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
