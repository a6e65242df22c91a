"""Owner-scoped maintenance: restore from Walrus, forget and stats (listings: relayer/routes/owners.py)."""

from __future__ import annotations

import asyncio
import uuid

from starlette.routing import Route

from relayer.api_models import (
    ForgetBody,
    ForgetRequest,
    RestoreBody,
    RestoreRequest,
    StatsBody,
    StatsRequest,
)
from relayer.database.forgetting import ForgetStore
from relayer.database.vectors import VectorEntry, VectorStore
from relayer.embeddings import Embedder
from relayer.memory_decryption import MemoryReader, seal_session
from relayer.sidecar_client import SidecarApi
from relayer.signed_routes import Handler, RequestContext, SignedRoutes
from sidecar.protocol import QueryBlobsRequest

MAX_RESTORE_LIMIT = 100  # ≤ protocol.MAX_OPEN_BATCH: one restore opens its blobs in one sidecar call


def restore(sidecar: SidecarApi, reader: MemoryReader, vectors: VectorStore, embedder: Embedder, forgetting: ForgetStore, *,
            package_id: str) -> Handler:
    async def handle(ctx: RequestContext[RestoreRequest]) -> RestoreBody:
        namespace = ctx.body.namespace
        limit = 10 if ctx.body.limit is None else min(ctx.body.limit, MAX_RESTORE_LIMIT)
        session = seal_session(ctx.auth)
        owner = ctx.auth.owner
        found = await sidecar.query_blobs(QueryBlobsRequest(owner, namespace, package_id), request_id=ctx.request_id)
        blob_ids = [b.blob_id for b in found.blobs]
        # A forgotten memory's blob stays on Walrus (the owner holds it): counted as skipped, never re-indexed.
        indexed = await vectors.blob_ids_in(owner, namespace, blob_ids) | await forgetting.forgotten_blob_ids(owner, blob_ids)
        missing = [b for b in found.blobs if b.blob_id not in indexed]
        selected = missing[:limit]
        opened = await reader.open(ctx.auth, [b.blob_id for b in selected], session=session, request_id=ctx.request_id)
        ready = [b for b in selected if b.blob_id in opened.texts]
        failed = len(selected) - len(ready)
        embeddings = await embedder.embed_many([opened.texts[b.blob_id] for b in ready]) if ready else []
        await asyncio.gather(
            *(
                vectors.upsert(
                    VectorEntry(
                        id=str(uuid.uuid4()), owner=owner, blob_id=b.blob_id, embedding=embedding, namespace=namespace,
                        blob_size_bytes=opened.ciphertext_sizes.get(b.blob_id, 0),
                    )
                )
                for b, embedding in zip(ready, embeddings, strict=True)
            )
        )
        restored = len(ready)
        return RestoreBody(
            restored=restored,
            skipped=len(indexed),
            total=len(found.blobs),
            namespace=namespace,
            owner=owner,
            truncated=len(missing) > limit or found.capped or (failed > 0 and restored == 0),
            failed=failed,
        )

    return handle


def forget(vectors: VectorStore) -> Handler:
    async def handle(ctx: RequestContext[ForgetRequest]) -> ForgetBody:
        namespace = ctx.body.namespace
        deleted = await vectors.forget(ctx.auth.owner, namespace)
        return ForgetBody(deleted=deleted, namespace=namespace, owner=ctx.auth.owner)

    return handle


def stats(vectors: VectorStore) -> Handler:
    async def handle(ctx: RequestContext[StatsRequest]) -> StatsBody:
        namespace = ctx.body.namespace
        result = await vectors.stats(ctx.auth.owner, namespace)
        return StatsBody(
            memory_count=result.memory_count, storage_bytes=result.storage_bytes, namespace=namespace, owner=ctx.auth.owner
        )

    return handle


def routes(
    signed: SignedRoutes, *, sidecar: SidecarApi, reader: MemoryReader, vectors: VectorStore, embedder: Embedder,
    package_id: str, forgetting: ForgetStore,
) -> list[Route]:
    return [
        signed.route("/api/restore", restore(sidecar, reader, vectors, embedder, forgetting, package_id=package_id),
                     summary="Re-index a namespace from the caller's blobs on Walrus", request=RestoreRequest,
                     response=RestoreBody, errors=(403, 502)),
        signed.route("/api/forget", forget(vectors), summary="Delete a namespace's index rows", request=ForgetRequest,
                     response=ForgetBody),
        signed.route("/api/stats", stats(vectors), summary="Count a namespace's memories and bytes", request=StatsRequest,
                     response=StatsBody),
    ]
