"""Background workers that carry remember jobs from "encrypted and queued" to "indexed".

A job row already holds the Seal ciphertext and the embedding when the request returns 202, so a crash
loses nothing. Workers claim jobs with a lease; a job whose worker died is claimed again when its
lease expires and resumes at its recorded stage:
  pending/running → quota check → upload (tag + transfer) → ``uploaded`` (blob id recorded)
  uploaded        → index row upsert (id = job id, idempotent) → ``done`` (ciphertext dropped)
Uploads are idempotent per job in the sidecar, so a resumed job never creates a second blob.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from relayer.database.errors import DatabaseError, QuotaExceeded
from relayer.database.vectors import VectorEntry
from relayer.sidecar_client import SidecarRejected, SidecarUnavailable

logger = logging.getLogger("memwal.jobs")

IDLE_POLL_SECONDS = 1.0
SWEEP_INTERVAL_SECONDS = 60.0
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0


class JobRunner:
    def __init__(self, services) -> None:
        self._services = services
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._lease_owner = f"relayer-{uuid.uuid4().hex[:12]}"
        self._stopping = False

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not self._stopping and all(not t.done() for t in self._tasks)

    def notify(self) -> None:
        self._wake.set()

    def start(self) -> None:
        concurrency = self._services.settings.job_concurrency
        self._tasks = [asyncio.create_task(self._worker(i), name=f"job-worker-{i}") for i in range(concurrency)]
        self._tasks.append(asyncio.create_task(self._sweeper(), name="job-sweeper"))

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _worker(self, index: int) -> None:
        jobs = self._services.jobs
        settings = self._services.settings
        while not self._stopping:
            try:
                job = await jobs.claim(self._lease_owner, settings.job_lease_seconds, max_attempts=settings.job_max_attempts)
            except DatabaseError as exc:
                logger.warning("job claim failed: %s", type(exc).__name__)
                job = None
                await asyncio.sleep(IDLE_POLL_SECONDS)
            if job is None:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)
                except TimeoutError:
                    pass
                continue
            await self.process(job)

    async def process(self, job) -> None:
        services = self._services
        settings = services.settings
        jobs = services.jobs
        try:
            blob_id = job.blob_id
            if not blob_id:
                if job.ciphertext is None:
                    await jobs.mark_failed(job, "job lost its ciphertext before upload")
                    return
                await services.quota.check(job.owner, len(job.ciphertext), settings.storage_quota_bytes)
                upload = await services.sidecar.upload(
                    job.ciphertext,
                    owner=job.owner,
                    namespace=job.namespace,
                    package_id=settings.package_id,
                    epochs=settings.walrus_storage_epochs,
                    job_id=job.id,
                    agent_id=job.agent_id,
                )
                blob_id = upload.blob_id
                job = await jobs.mark_uploaded(job, upload.blob_id, upload.object_id)
            await services.vectors.upsert(
                VectorEntry(
                    id=job.id,
                    owner=job.owner,
                    blob_id=blob_id,
                    embedding=job.embedding,
                    namespace=job.namespace,
                    blob_size_bytes=len(job.ciphertext) if job.ciphertext is not None else 0,
                    importance=job.importance,
                )
            )
            await jobs.mark_done(job)
            services.metrics.jobs.labels("done").inc()
        except QuotaExceeded as exc:
            await self._safely(jobs.mark_failed(job, f"Quota Exceeded: {exc}"))
            services.metrics.jobs.labels("quota").inc()
        except SidecarRejected as exc:
            # The sidecar refused the request itself: retrying cannot help.
            await self._safely(jobs.mark_failed(job, f"{exc.kind}: {exc.message}"))
            services.metrics.jobs.labels("failed").inc()
        except (SidecarUnavailable, DatabaseError) as exc:
            attempts = job.attempts
            if attempts >= settings.job_max_attempts:
                await self._safely(jobs.mark_failed(job, f"gave up after {attempts} attempts: {exc}"))
                services.metrics.jobs.labels("failed").inc()
            else:
                delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempts - 1))
                await self._safely(jobs.release(job, str(exc), delay))
                services.metrics.jobs.labels("retry").inc()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("job %s failed unexpectedly", job.id)
            await self._safely(jobs.release(job, "internal error", RETRY_MAX_SECONDS))

    @staticmethod
    async def _safely(operation) -> None:
        try:
            await operation
        except DatabaseError as exc:
            logger.warning("job bookkeeping failed (lease expiry will retry): %s", type(exc).__name__)

    async def _sweeper(self) -> None:
        while not self._stopping:
            try:
                await self._services.jobs.fail_exhausted(self._services.settings.job_max_attempts)
            except DatabaseError as exc:
                logger.warning("job sweep failed: %s", type(exc).__name__)
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
