"""Writing memories: remember (async job), its status, bulk, bulk status, and manual remember.

The text is embedded and Seal-encrypted before the 202 (relayer/memory_preparation.py), and the job row
stores the ciphertext and the embedding (never the plaintext), so an accepted memory survives a relayer crash.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from starlette.routing import Route

from relayer.api_models import (
    BulkAccepted,
    BulkStatusBody,
    BulkStatusEntry,
    BulkStatusRequest,
    JobStatusBody,
    ManualRememberBody,
    ManualRememberRequest,
    RememberAccepted,
    RememberBulkRequest,
    RememberRequest,
)
from relayer.database.jobs import Job, JobKind, JobQueue, JobSummary
from relayer.errors import NotFound
from relayer.job_runner import JobRunner
from relayer.memory_metadata import MemoryMetadata, MetadataPolicy
from relayer.memory_preparation import MemoryPreparer, MemoryText, remember_job
from relayer.memory_storage import MemoryRecord, MemoryStorage
from relayer.seal_objects import check_own_seal_object
from relayer.signed_routes import Handler, RequestContext, SignedRoutes
from relayer.validation import is_job_id

DEFAULT_IMPORTANCE = 0.5
# Once a remember job is queued, its status is one GET away (a stateful fuzzer follows this link).
JOB_STATUS_LINK = {
    "GetJobStatus": {"operationId": "getApiRememberJobId", "parameters": {"job_id": "$response.body#/job_id"}}
}


def job_status_body(job: Job) -> JobStatusBody:
    return JobStatusBody(
        job_id=job.id, status=job.status.value, owner=job.owner, namespace=job.namespace, blob_id=job.blob_id or None,
        error=job.error_msg or None,
    )


def remember(preparer: MemoryPreparer, runner: JobRunner, jobs: JobQueue, storage: MemoryStorage,
             policy: MetadataPolicy) -> Handler:
    async def handle(ctx: RequestContext[RememberRequest]) -> RememberAccepted:
        body = ctx.body
        metadata = policy.metadata(body.tags, body.ttl_seconds)
        [job] = await enqueue_memories(ctx, [MemoryText(body.text, body.namespace, DEFAULT_IMPORTANCE)], [body.idempotency_key],
                                       [metadata], preparer=preparer, runner=runner, jobs=jobs, storage=storage)
        return RememberAccepted(job_id=job.job_id, status=job.status.value)

    return handle


async def enqueue_memories(
    ctx: RequestContext[Any], items: Sequence[MemoryText], keys: Sequence[str | None], metadata: Sequence[MemoryMetadata],
    *, preparer: MemoryPreparer, runner: JobRunner, jobs: JobQueue, storage: MemoryStorage,
) -> list[JobSummary]:
    """One job per item, in order. An item whose idempotency key this owner already used gets that job back and
    costs nothing (no quota, no encryption, no blob); the unique index on (owner, idempotency_key) settles
    concurrent replays (JobQueue.create), so two at once still make one job. Items of one request sharing a key
    share one job."""
    owner = ctx.auth.owner
    # Keys are printable ASCII, so "\x00<index>" names an unkeyed item without colliding with any key.
    slots = [key if key is not None else f"\x00{index}" for index, key in enumerate(keys)]
    jobs_by_slot = await jobs.by_idempotency_keys(owner, [key for key in keys if key is not None])
    fresh: list[int] = []  # the first item of each slot not seen before: these are prepared and queued
    for index, slot in enumerate(slots):
        if slot not in jobs_by_slot and slot not in {slots[i] for i in fresh}:
            fresh.append(index)
    if fresh:
        # The quota is checked before the 202 (the job checks again before it uploads), so a full account
        # hears 402 now instead of a job that fails later.
        await storage.check_quota(owner, sum(len(items[index].text.encode("utf-8")) for index in fresh))
        prepared = await preparer.prepare(owner, [items[index] for index in fresh], request_id=ctx.request_id)
        await storage.check_quota(owner, sum(len(memory.ciphertext) for memory in prepared))
        for index, memory in zip(fresh, prepared, strict=True):
            job = await runner.submit(
                remember_job(ctx.auth, memory, JobKind.REMEMBER, idempotency_key=keys[index], metadata=metadata[index])
            )
            jobs_by_slot[slots[index]] = JobSummary(job.id, job.status, job.blob_id, job.error_msg)
    return [jobs_by_slot[slot] for slot in slots]


def remember_status(jobs: JobQueue) -> Handler:
    async def handle(ctx: RequestContext[None]) -> JobStatusBody:
        job_id = ctx.path_params["job_id"]
        job = await jobs.get(ctx.auth.owner, job_id) if is_job_id(job_id) else None
        if job is None:
            raise NotFound(f"Job {job_id} not found")
        return job_status_body(job)

    return handle


def remember_bulk(preparer: MemoryPreparer, runner: JobRunner, jobs: JobQueue, storage: MemoryStorage,
                  policy: MetadataPolicy) -> Handler:
    async def handle(ctx: RequestContext[RememberBulkRequest]) -> BulkAccepted:
        items = [MemoryText(item.text, item.namespace, DEFAULT_IMPORTANCE) for item in ctx.body.items]
        keys = [item.idempotency_key for item in ctx.body.items]
        metadata = [
            MemoryMetadata(policy.tags(item.tags, f"items[{index}].tags"), policy.expires_at(item.ttl_seconds, f"items[{index}].ttl_seconds"))
            for index, item in enumerate(ctx.body.items)
        ]
        job_ids = [job.job_id for job in await enqueue_memories(ctx, items, keys, metadata, preparer=preparer, runner=runner,
                                                                jobs=jobs, storage=storage)]
        return BulkAccepted(job_ids=job_ids, total=len(job_ids), status="pending")

    return handle


def remember_bulk_status(jobs: JobQueue) -> Handler:
    async def handle(ctx: RequestContext[BulkStatusRequest]) -> BulkStatusBody:
        job_ids = ctx.body.job_ids
        valid = [job_id for job_id in job_ids if is_job_id(job_id)]
        found = await jobs.statuses(ctx.auth.owner, valid) if valid else {}
        results: list[BulkStatusEntry] = []
        for job_id in job_ids:  # request order and duplicates kept
            job = found.get(job_id)
            if job is None:
                results.append(BulkStatusEntry(job_id=job_id, status="not_found"))
            else:
                results.append(BulkStatusEntry(job_id=job_id, status=job.status.value, blob_id=job.blob_id or None,
                                               error=job.error or None))
        return BulkStatusBody(results=results)

    return handle


def remember_manual(storage: MemoryStorage, package_id: str, policy: MetadataPolicy) -> Handler:
    async def handle(ctx: RequestContext[ManualRememberRequest]) -> ManualRememberBody:
        body = ctx.body
        metadata = policy.metadata(body.tags, body.ttl_seconds)
        ciphertext = body.encrypted_data
        # Everything is checked before the upload the server wallet pays for: the body (validated above), that
        # the Seal object is the caller's own (MemWal #369), and the quota (MemoryStorage.store checks it first).
        check_own_seal_object(ciphertext, owner=ctx.auth.owner, package_id=package_id)
        memory = MemoryRecord(
            entry_id=str(uuid.uuid4()),
            owner=ctx.auth.owner,
            namespace=body.namespace,
            ciphertext=ciphertext,
            embedding=body.vector,
            importance=DEFAULT_IMPORTANCE,
            agent_id=ctx.auth.public_key_hex,
            tags=metadata.tags,
            expires_at=metadata.expires_at,
        )
        upload = await storage.store(memory, request_id=ctx.request_id)
        return ManualRememberBody(id=memory.entry_id, blob_id=upload.blob_id, owner=ctx.auth.owner, namespace=body.namespace)

    return handle


def routes(
    signed: SignedRoutes, *, preparer: MemoryPreparer, runner: JobRunner, jobs: JobQueue, storage: MemoryStorage, package_id: str,
    metadata: MetadataPolicy,
) -> list[Route]:
    return [
        signed.route("/api/remember", remember(preparer, runner, jobs, storage, metadata), summary="Remember a text (async job)",
                     request=RememberRequest, response=RememberAccepted, status=202, errors=(402, 502), links=JOB_STATUS_LINK),
        signed.route("/api/remember/bulk", remember_bulk(preparer, runner, jobs, storage, metadata), summary="Remember up to 20 texts",
                     request=RememberBulkRequest, response=BulkAccepted, status=202, errors=(402, 502)),
        signed.route("/api/remember/bulk/status", remember_bulk_status(jobs), summary="Status of up to 20 jobs",
                     request=BulkStatusRequest, response=BulkStatusBody),
        signed.route("/api/remember/manual", remember_manual(storage, package_id, metadata),
                     summary="Store a client-encrypted Seal object with its vector", request=ManualRememberRequest,
                     response=ManualRememberBody, errors=(402, 403, 502)),
        signed.route("/api/remember/{job_id}", remember_status(jobs), summary="Status of one remember job",
                     request=None, response=JobStatusBody, errors=(404,)),
    ]
