"""Owner-scoped maintenance: restore from Walrus, forget, stats, and the namespace listing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from starlette.routing import Route

from relayer.database.namespaces import NamespaceIndex
from relayer.database.vectors import VectorEntry, VectorStore
from relayer.embeddings import Embedder
from relayer.errors import InvalidValue, NotOwner
from relayer.memory_decryption import MemoryReader, seal_session
from relayer.sidecar_client import SidecarApi
from relayer.signed_routes import Handler, RequestContext, SignedRoutes
from relayer.validation import limit_field, namespace_field
from sidecar.protocol import QueryBlobsRequest

MAX_RESTORE_LIMIT = 100  # ≤ protocol.MAX_OPEN_BATCH: one restore opens its blobs in one sidecar call
DEFAULT_NAMESPACE_PAGE = 100
MAX_NAMESPACE_PAGE = 500


def restore(sidecar: SidecarApi, reader: MemoryReader, vectors: VectorStore, embedder: Embedder, *, package_id: str) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        namespace = namespace_field(ctx.body, required=True)
        limit = limit_field(ctx.body, default=10, cap=MAX_RESTORE_LIMIT)
        session = seal_session(ctx.auth)
        owner = ctx.auth.owner
        found = await sidecar.query_blobs(QueryBlobsRequest(owner, namespace, package_id), request_id=ctx.request_id)
        indexed = await vectors.blob_ids_in(owner, namespace, [b.blob_id for b in found.blobs])
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
        return 200, {
            "restored": restored,
            "skipped": len(indexed),
            "total": len(found.blobs),
            "namespace": namespace,
            "owner": owner,
            "truncated": len(missing) > limit or found.capped or (failed > 0 and restored == 0),
            "failed": failed,
        }

    return handle


def forget(vectors: VectorStore) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        namespace = namespace_field(ctx.body, required=True)
        deleted = await vectors.forget(ctx.auth.owner, namespace)
        return 200, {"deleted": deleted, "namespace": namespace, "owner": ctx.auth.owner}

    return handle


def stats(vectors: VectorStore) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        namespace = namespace_field(ctx.body)
        result = await vectors.stats(ctx.auth.owner, namespace)
        return 200, {
            "memory_count": result.memory_count,
            "storage_bytes": result.storage_bytes,
            "namespace": namespace,
            "owner": ctx.auth.owner,
        }

    return handle


def namespaces(index: NamespaceIndex) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        owner = ctx.path_params["owner"]
        if owner.lower() != ctx.auth.owner.lower():
            raise NotOwner("You can only list your own namespaces")
        raw_limit = ctx.query.get("limit")
        if raw_limit is not None and (not raw_limit.isdigit() or int(raw_limit) <= 0):
            raise InvalidValue("`limit` must be a positive integer")
        limit = min(int(raw_limit), MAX_NAMESPACE_PAGE) if raw_limit else DEFAULT_NAMESPACE_PAGE
        page = await index.page(ctx.auth.owner, ctx.query.get("updated_after"), limit)
        return 200, page.to_json()

    return handle


def routes(
    signed: SignedRoutes, *, sidecar: SidecarApi, reader: MemoryReader, vectors: VectorStore, embedder: Embedder,
    index: NamespaceIndex, package_id: str,
) -> list[Route]:
    return [
        signed.route("/api/restore", restore(sidecar, reader, vectors, embedder, package_id=package_id)),
        signed.route("/api/forget", forget(vectors)),
        signed.route("/api/stats", stats(vectors)),
        signed.route("/v1/owners/{owner}/namespaces", namespaces(index), ["GET"]),
    ]
