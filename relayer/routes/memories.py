"""Writing memories: remember (async job), its status, bulk, bulk status, and manual remember.

The text is embedded and Seal-encrypted before the 202, and the job row stores the ciphertext and the
embedding (never the plaintext), so an accepted memory survives a relayer crash.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from starlette.routing import Route

from relayer.database.errors import QuotaExceeded
from relayer.database.jobs import JobKind, NewJob
from relayer.database.vectors import VectorEntry
from relayer.errors import BadRequest, NotFound, PaymentRequired
from relayer.memory_decryption import sidecar_error
from relayer.sidecar_client import SidecarRejected, SidecarUnavailable
from relayer.signed_routes import RequestContext, protected
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


@dataclass(frozen=True)
class PreparedMemory:
    namespace: str
    ciphertext: bytes
    embedding: list[float]
    importance: float


async def prepare(services, ctx: RequestContext, items: list[tuple[str, str, float]]) -> list[PreparedMemory]:
    """Embed (summaries for long texts) and Seal-encrypt each ``(text, namespace, importance)``."""
    llm = services.llm
    embedding_texts = await asyncio.gather(*(llm.summarize_for_embedding(text) for text, _, _ in items))
    try:
        vectors_task = asyncio.ensure_future(services.embedder.embed_many(list(embedding_texts)))
        ciphertexts = await asyncio.gather(
            *(
                services.sidecar.encrypt(text.encode("utf-8"), ctx.auth.owner, services.settings.package_id, request_id=ctx.request_id)
                for text, _, _ in items
            )
        )
        vectors = await vectors_task
    except (SidecarUnavailable, SidecarRejected) as exc:
        vectors_task.cancel()
        raise sidecar_error(exc) from None
    return [
        PreparedMemory(namespace, ciphertext, vector, importance)
        for (_, namespace, importance), ciphertext, vector in zip(items, ciphertexts, vectors, strict=True)
    ]


async def enqueue(services, ctx: RequestContext, memory: PreparedMemory, *, kind: JobKind, idempotency_key: str | None = None):
    enqueued = await services.jobs.create(
        NewJob(
            owner=ctx.auth.owner,
            namespace=memory.namespace,
            ciphertext=memory.ciphertext,
            embedding=memory.embedding,
            kind=kind,
            importance=memory.importance,
            agent_id=ctx.auth.public_key_hex,
            idempotency_key=idempotency_key,
        )
    )
    services.job_runner.notify()
    return enqueued.job


def job_status_body(job) -> dict:
    body = {"job_id": job.id, "status": job.status, "owner": job.owner, "namespace": job.namespace}
    if job.blob_id:
        body["blob_id"] = job.blob_id
    if job.error_msg:
        body["error"] = job.error_msg
    return body


def routes(services) -> list[Route]:
    async def remember(ctx: RequestContext):
        text = text_field(ctx.body, "text", max_bytes=MAX_REMEMBER_TEXT_BYTES)
        namespace = namespace_field(ctx.body)
        key = idempotency_key_field(ctx.body)
        [memory] = await prepare(services, ctx, [(text, namespace, DEFAULT_IMPORTANCE)])
        job = await enqueue(services, ctx, memory, kind=JobKind.REMEMBER, idempotency_key=key)
        return 202, {"job_id": job.id, "status": job.status}

    async def remember_status(ctx: RequestContext):
        job_id = ctx.path_params["job_id"]
        job = await services.jobs.get(ctx.auth.owner, job_id) if is_job_id(job_id) else None
        if job is None:
            raise NotFound(f"Job {job_id} not found")
        return 200, job_status_body(job)

    async def remember_bulk(ctx: RequestContext):
        items = ctx.body.get("items")
        if not isinstance(items, list):
            from relayer.errors import UnprocessableEntity

            raise UnprocessableEntity("`items` must be an array")
        if not 1 <= len(items) <= MAX_BULK_ITEMS:
            raise BadRequest(f"`items` must have 1..{MAX_BULK_ITEMS} entries, got {len(items)}")
        parsed = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise BadRequest(f"items[{index}] must be an object")
            text = text_field(item, "text", max_bytes=MAX_BULK_TEXT_BYTES, empty_message=f"items[{index}].text cannot be empty")
            namespace = check_namespace(item["namespace"]) if item.get("namespace") is not None else "default"
            parsed.append((text, namespace, DEFAULT_IMPORTANCE))
        prepared = await prepare(services, ctx, parsed)
        job_ids = [(await enqueue(services, ctx, memory, kind=JobKind.REMEMBER)).id for memory in prepared]
        return 202, {"job_ids": job_ids, "total": len(job_ids), "status": "pending"}

    async def remember_bulk_status(ctx: RequestContext):
        job_ids = string_list_field(ctx.body, "job_ids", min_items=1, max_items=MAX_BULK_ITEMS)
        valid = [job_id for job_id in job_ids if is_job_id(job_id)]
        found = await services.jobs.statuses(ctx.auth.owner, valid) if valid else {}
        results = []
        for job_id in job_ids:  # request order and duplicates kept
            job = found.get(job_id)
            if job is None:
                results.append({"job_id": job_id, "status": "not_found"})
            else:
                entry = {"job_id": job_id, "status": job.status}
                if job.blob_id:
                    entry["blob_id"] = job.blob_id
                if job.error:
                    entry["error"] = job.error
                results.append(entry)
        return 200, {"results": results}

    async def remember_manual(ctx: RequestContext):
        ciphertext = base64_field(ctx.body, "encrypted_data", max_bytes=MAX_ENCRYPTED_BYTES)
        vector = vector_field(ctx.body)
        namespace = namespace_field(ctx.body)
        try:
            await services.quota.check(ctx.auth.owner, len(ciphertext), services.settings.storage_quota_bytes)
        except QuotaExceeded as exc:
            raise PaymentRequired(str(exc)) from None
        entry_id = str(uuid.uuid4())
        try:
            upload = await services.sidecar.upload(
                ciphertext,
                owner=ctx.auth.owner,
                namespace=namespace,
                package_id=services.settings.package_id,
                epochs=services.settings.walrus_storage_epochs,
                job_id=entry_id,
                agent_id=ctx.auth.public_key_hex,
                request_id=ctx.request_id,
            )
        except (SidecarUnavailable, SidecarRejected) as exc:
            raise sidecar_error(exc) from None
        await services.vectors.upsert(
            VectorEntry(
                id=entry_id,
                owner=ctx.auth.owner,
                blob_id=upload.blob_id,
                embedding=vector,
                namespace=namespace,
                blob_size_bytes=len(ciphertext),
                importance=DEFAULT_IMPORTANCE,
            )
        )
        return 200, {"id": entry_id, "blob_id": upload.blob_id, "owner": ctx.auth.owner, "namespace": namespace}

    def route(path: str, handler, methods: list[str]) -> Route:
        return Route(path, protected(services, handler, route=path), methods=methods)

    return [
        route("/api/remember", remember, ["POST"]),
        route("/api/remember/bulk", remember_bulk, ["POST"]),
        route("/api/remember/bulk/status", remember_bulk_status, ["POST"]),
        route("/api/remember/manual", remember_manual, ["POST"]),
        route("/api/remember/{job_id}", remember_status, ["GET"]),
    ]


__all__ = ["enqueue", "prepare", "routes"]
