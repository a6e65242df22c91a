"""Owner-scoped maintenance: restore from Walrus, forget, stats, and the namespace listing."""

from __future__ import annotations

import asyncio
import uuid

from starlette.routing import Route

from relayer.database.errors import InvalidCursor, InvalidLimit
from relayer.database.vectors import VectorEntry
from relayer.errors import BadRequest, Forbidden
from relayer.memory_decryption import hydrate, require_session, sidecar_error
from relayer.sidecar_client import SidecarRejected, SidecarUnavailable
from relayer.signed_routes import RequestContext, protected
from relayer.validation import limit_field, namespace_field

MAX_RESTORE_LIMIT = 100
RESTORE_BATCH = 25
DEFAULT_NAMESPACE_PAGE = 100
MAX_NAMESPACE_PAGE = 500


def routes(services) -> list[Route]:
    settings = services.settings

    async def restore(ctx: RequestContext):
        namespace = namespace_field(ctx.body, required=True)
        limit = limit_field(ctx.body, default=10, cap=MAX_RESTORE_LIMIT)
        session = require_session(ctx.auth.seal_session)
        owner = ctx.auth.owner
        try:
            blobs, total, capped = await services.sidecar.query_blobs(
                owner=owner, namespace=namespace, package_id=settings.package_id, limit=limit, request_id=ctx.request_id
            )
        except (SidecarUnavailable, SidecarRejected) as exc:
            raise sidecar_error(exc) from None
        indexed = await services.vectors.blob_ids_in(owner, namespace, [b.blob_id for b in blobs])
        missing = [b for b in blobs if b.blob_id not in indexed]
        selected = missing[:limit]
        restored = failed = 0
        for start in range(0, len(selected), RESTORE_BATCH):
            batch = selected[start : start + RESTORE_BATCH]
            hydrated = await hydrate(
                services.sidecar, services.vectors, owner=owner, account_id=ctx.auth.account_id,
                package_id=settings.package_id, session=session, blob_ids=[b.blob_id for b in batch],
                request_id=ctx.request_id,
            )
            ready = [b for b in batch if b.blob_id in hydrated.texts]
            failed += len(batch) - len(ready)
            if not ready:
                continue
            vectors = await services.embedder.embed_many([hydrated.texts[b.blob_id] for b in ready])
            await asyncio.gather(
                *(
                    services.vectors.upsert(
                        VectorEntry(
                            id=str(uuid.uuid4()), owner=owner, blob_id=b.blob_id, embedding=vector, namespace=namespace,
                            blob_size_bytes=hydrated.ciphertext_sizes.get(b.blob_id, 0),
                        )
                    )
                    for b, vector in zip(ready, vectors, strict=True)
                )
            )
            restored += len(ready)
        return 200, {
            "restored": restored,
            "skipped": len(indexed),
            "total": total,
            "namespace": namespace,
            "owner": owner,
            "truncated": len(missing) > limit or capped or (failed > 0 and restored == 0),
            "failed": failed,
        }

    async def forget(ctx: RequestContext):
        namespace = namespace_field(ctx.body, required=True)
        deleted = await services.vectors.forget(ctx.auth.owner, namespace)
        return 200, {"deleted": deleted, "namespace": namespace, "owner": ctx.auth.owner}

    async def stats(ctx: RequestContext):
        namespace = namespace_field(ctx.body)
        result = await services.vectors.stats(ctx.auth.owner, namespace)
        return 200, {
            "memory_count": result.memory_count,
            "storage_bytes": result.storage_bytes,
            "namespace": namespace,
            "owner": ctx.auth.owner,
        }

    async def namespaces(ctx: RequestContext):
        owner = ctx.path_params["owner"]
        if owner.lower() != ctx.auth.owner.lower():
            raise Forbidden("You can only list your own namespaces")
        raw_limit = ctx.query.get("limit")
        if raw_limit is not None and (not raw_limit.isdigit() or int(raw_limit) <= 0):
            raise BadRequest("`limit` must be a positive integer")
        limit = min(int(raw_limit), MAX_NAMESPACE_PAGE) if raw_limit else DEFAULT_NAMESPACE_PAGE
        try:
            page = await services.namespaces.list_namespaces(ctx.auth.owner, ctx.query.get("updated_after"), limit)
        except (InvalidCursor, InvalidLimit) as exc:
            raise BadRequest(str(exc)) from None
        return 200, page

    def route(path: str, handler, method: str = "POST") -> Route:
        return Route(path, protected(services, handler, route=path), methods=[method])

    return [
        route("/api/restore", restore),
        route("/api/forget", forget),
        route("/api/stats", stats),
        route("/v1/owners/{owner}/namespaces", namespaces, "GET"),
    ]
