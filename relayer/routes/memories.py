"""Writing memories: remember (async job), its status, bulk, bulk status, and manual remember.

The text is embedded and Seal-encrypted before the 202 (relayer/memory_preparation.py), and the job row
stores the ciphertext and the embedding (never the plaintext), so an accepted memory survives a relayer crash.
"""

from __future__ import annotations

import uuid

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
from relayer.database.jobs import Job, JobKind, JobQueue
from relayer.errors import NotFound
from relayer.job_runner import JobRunner
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


def remember(preparer: MemoryPreparer, runner: JobRunner, storage: MemoryStorage) -> Handler:
    async def handle(ctx: RequestContext[RememberRequest]) -> RememberAccepted:
        body = ctx.body
        # The quota is checked before the 202 (the job checks again before it uploads), so a full account
        # hears 402 now instead of a job that fails later.
        await storage.check_quota(ctx.auth.owner, len(body.text.encode("utf-8")))
        [memory] = await preparer.prepare(ctx.auth.owner, [MemoryText(body.text, body.namespace, DEFAULT_IMPORTANCE)],
                                          request_id=ctx.request_id)
        await storage.check_quota(ctx.auth.owner, len(memory.ciphertext))
        job = await runner.submit(remember_job(ctx.auth, memory, JobKind.REMEMBER, idempotency_key=body.idempotency_key))
        return RememberAccepted(job_id=job.id, status=job.status.value)

    return handle


def remember_status(jobs: JobQueue) -> Handler:
    async def handle(ctx: RequestContext[None]) -> JobStatusBody:
        job_id = ctx.path_params["job_id"]
        job = await jobs.get(ctx.auth.owner, job_id) if is_job_id(job_id) else None
        if job is None:
            raise NotFound(f"Job {job_id} not found")
        return job_status_body(job)

    return handle


def remember_bulk(preparer: MemoryPreparer, runner: JobRunner, storage: MemoryStorage) -> Handler:
    async def handle(ctx: RequestContext[RememberBulkRequest]) -> BulkAccepted:
        items = [MemoryText(item.text, item.namespace, DEFAULT_IMPORTANCE) for item in ctx.body.items]
        await storage.check_quota(ctx.auth.owner, sum(len(item.text.encode("utf-8")) for item in items))
        prepared = await preparer.prepare(ctx.auth.owner, items, request_id=ctx.request_id)
        await storage.check_quota(ctx.auth.owner, sum(len(memory.ciphertext) for memory in prepared))
        job_ids = [(await runner.submit(remember_job(ctx.auth, memory, JobKind.REMEMBER))).id for memory in prepared]
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


def remember_manual(storage: MemoryStorage, package_id: str) -> Handler:
    async def handle(ctx: RequestContext[ManualRememberRequest]) -> ManualRememberBody:
        body = ctx.body
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
        )
        upload = await storage.store(memory, request_id=ctx.request_id)
        return ManualRememberBody(id=memory.entry_id, blob_id=upload.blob_id, owner=ctx.auth.owner, namespace=body.namespace)

    return handle


def routes(
    signed: SignedRoutes, *, preparer: MemoryPreparer, runner: JobRunner, jobs: JobQueue, storage: MemoryStorage, package_id: str
) -> list[Route]:
    return [
        signed.route("/api/remember", remember(preparer, runner, storage), summary="Remember a text (async job)",
                     request=RememberRequest, response=RememberAccepted, status=202, errors=(402, 502), links=JOB_STATUS_LINK),
        signed.route("/api/remember/bulk", remember_bulk(preparer, runner, storage), summary="Remember up to 20 texts",
                     request=RememberBulkRequest, response=BulkAccepted, status=202, errors=(402, 502)),
        signed.route("/api/remember/bulk/status", remember_bulk_status(jobs), summary="Status of up to 20 jobs",
                     request=BulkStatusRequest, response=BulkStatusBody),
        signed.route("/api/remember/manual", remember_manual(storage, package_id),
                     summary="Store a client-encrypted Seal object with its vector", request=ManualRememberRequest,
                     response=ManualRememberBody, errors=(402, 403, 502)),
        signed.route("/api/remember/{job_id}", remember_status(jobs), summary="Status of one remember job",
                     request=None, response=JobStatusBody, errors=(404,)),
    ]
