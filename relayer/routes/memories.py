"""Writing memories: remember (async job), its status, bulk, bulk status, and manual remember.

The text is embedded and Seal-encrypted before the 202 (relayer/memory_preparation.py), and the job row
stores the ciphertext and the embedding (never the plaintext), so an accepted memory survives a relayer crash.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.routing import Route

from relayer.database.jobs import Job, JobKind, JobQueue
from relayer.errors import FieldError, InvalidValue, NotFound
from relayer.job_runner import JobRunner
from relayer.memory_preparation import MemoryPreparer, MemoryText, remember_job
from relayer.memory_storage import MemoryRecord, MemoryStorage
from relayer.signed_routes import Handler, RequestContext, SignedRoutes
from relayer.validation import (
    MAX_BULK_ITEMS,
    MAX_BULK_TEXT_BYTES,
    MAX_ENCRYPTED_BYTES,
    MAX_REMEMBER_TEXT_BYTES,
    base64_field,
    check_namespace,
    idempotency_key_field,
    is_job_id,
    namespace_field,
    string_list_field,
    text_field,
    vector_field,
)

DEFAULT_IMPORTANCE = 0.5


def job_status_body(job: Job) -> dict[str, Any]:
    body: dict[str, Any] = {"job_id": job.id, "status": job.status, "owner": job.owner, "namespace": job.namespace}
    if job.blob_id:
        body["blob_id"] = job.blob_id
    if job.error_msg:
        body["error"] = job.error_msg
    return body


def remember(preparer: MemoryPreparer, runner: JobRunner) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        text = text_field(ctx.body, "text", max_bytes=MAX_REMEMBER_TEXT_BYTES)
        namespace = namespace_field(ctx.body)
        key = idempotency_key_field(ctx.body)
        [memory] = await preparer.prepare(ctx.auth.owner, [MemoryText(text, namespace, DEFAULT_IMPORTANCE)], request_id=ctx.request_id)
        job = await runner.submit(remember_job(ctx.auth, memory, JobKind.REMEMBER, idempotency_key=key))
        return 202, {"job_id": job.id, "status": job.status}

    return handle


def remember_status(jobs: JobQueue) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        job_id = ctx.path_params["job_id"]
        job = await jobs.get(ctx.auth.owner, job_id) if is_job_id(job_id) else None
        if job is None:
            raise NotFound(f"Job {job_id} not found")
        return 200, job_status_body(job)

    return handle


def remember_bulk(preparer: MemoryPreparer, runner: JobRunner) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        items = ctx.body.get("items")
        if not isinstance(items, list):
            raise FieldError("`items` must be an array")
        if not 1 <= len(items) <= MAX_BULK_ITEMS:
            raise InvalidValue(f"`items` must have 1..{MAX_BULK_ITEMS} entries, got {len(items)}")
        parsed = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidValue(f"items[{index}] must be an object")
            text = text_field(item, "text", max_bytes=MAX_BULK_TEXT_BYTES, empty_message=f"items[{index}].text cannot be empty")
            namespace = check_namespace(item["namespace"]) if item.get("namespace") is not None else "default"
            parsed.append(MemoryText(text, namespace, DEFAULT_IMPORTANCE))
        prepared = await preparer.prepare(ctx.auth.owner, parsed, request_id=ctx.request_id)
        job_ids = [(await runner.submit(remember_job(ctx.auth, memory, JobKind.REMEMBER))).id for memory in prepared]
        return 202, {"job_ids": job_ids, "total": len(job_ids), "status": "pending"}

    return handle


def remember_bulk_status(jobs: JobQueue) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        job_ids = string_list_field(ctx.body, "job_ids", min_items=1, max_items=MAX_BULK_ITEMS)
        valid = [job_id for job_id in job_ids if is_job_id(job_id)]
        found = await jobs.statuses(ctx.auth.owner, valid) if valid else {}
        results: list[dict[str, Any]] = []
        for job_id in job_ids:  # request order and duplicates kept
            job = found.get(job_id)
            if job is None:
                results.append({"job_id": job_id, "status": "not_found"})
                continue
            entry: dict[str, Any] = {"job_id": job_id, "status": job.status}
            if job.blob_id:
                entry["blob_id"] = job.blob_id
            if job.error:
                entry["error"] = job.error
            results.append(entry)
        return 200, {"results": results}

    return handle


def remember_manual(storage: MemoryStorage) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        ciphertext = base64_field(ctx.body, "encrypted_data", max_bytes=MAX_ENCRYPTED_BYTES)
        vector = vector_field(ctx.body)
        namespace = namespace_field(ctx.body)
        memory = MemoryRecord(
            entry_id=str(uuid.uuid4()),
            owner=ctx.auth.owner,
            namespace=namespace,
            ciphertext=ciphertext,
            embedding=vector,
            importance=DEFAULT_IMPORTANCE,
            agent_id=ctx.auth.public_key_hex,
        )
        upload = await storage.store(memory, request_id=ctx.request_id)
        return 200, {"id": memory.entry_id, "blob_id": upload.blob_id, "owner": ctx.auth.owner, "namespace": namespace}

    return handle


def routes(signed: SignedRoutes, *, preparer: MemoryPreparer, runner: JobRunner, jobs: JobQueue, storage: MemoryStorage) -> list[Route]:
    return [
        signed.route("/api/remember", remember(preparer, runner)),
        signed.route("/api/remember/bulk", remember_bulk(preparer, runner)),
        signed.route("/api/remember/bulk/status", remember_bulk_status(jobs)),
        signed.route("/api/remember/manual", remember_manual(storage)),
        signed.route("/api/remember/{job_id}", remember_status(jobs), ["GET"]),
    ]
