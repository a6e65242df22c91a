"""Beyond upstream: forget one memory by id (``POST /api/forget/memory``), owner-scoped and idempotent.

The index row and the memory's tombstone change in one transaction (relayer/database/forgetting.py), so the
memory is out of recall, listings and restore once the answer is sent, and a repeated call answers the same.
Another owner's memory id answers 404 exactly as an unknown one does.
"""

from __future__ import annotations

from datetime import UTC

from starlette.routing import Route

from relayer.api_models import ForgetMemoryBody, ForgetMemoryRequest
from relayer.database.forgetting import ForgetReason, ForgetStore, Tombstone
from relayer.errors import NotFound
from relayer.signed_routes import Handler, RequestContext, SignedRoutes


def forget_memory_body(tombstone: Tombstone) -> ForgetMemoryBody:
    # Every Blob is handed to its owner at upload (sidecar/uploads.py), so the server wallet can delete none.
    return ForgetMemoryBody(
        memory_id=tombstone.memory_id,
        reason=tombstone.reason.value,
        forgotten_at=tombstone.forgotten_at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        blob_id=tombstone.blob_id,
        blob_deleted=False,
        blob_status="held_by_owner" if tombstone.blob_id is not None else "not_uploaded",
    )


def forget_memory(store: ForgetStore) -> Handler:
    async def handle(ctx: RequestContext[ForgetMemoryRequest]) -> ForgetMemoryBody:
        memory_id = ctx.body.memory_id
        tombstone = await store.forget(ctx.auth.owner, memory_id, ForgetReason.FORGOTTEN)
        if tombstone is None:
            raise NotFound(f"Memory {memory_id} not found")
        return forget_memory_body(tombstone)

    return handle


def routes(signed: SignedRoutes, *, store: ForgetStore) -> list[Route]:
    return [
        signed.route("/api/forget/memory", forget_memory(store), summary="Forget one memory by id (extension; idempotent)",
                     request=ForgetMemoryRequest, response=ForgetMemoryBody, errors=(404,)),
    ]
