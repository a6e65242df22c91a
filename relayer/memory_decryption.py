"""Turn vector hits into plaintext memories: cached/raced Walrus reads, then Seal decryption in batches.

``dropped`` counts download, decrypt and bad-UTF-8 failures. Index rows are deleted only when the blob
is provably gone (every aggregator answered 404) or the ciphertext itself is corrupt — never on a
timeout, and never because the caller's credential was refused (upstream deletes rows on a bad
credential; we do not).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from relayer.errors import ApiError, BadRequest, Forbidden, UpstreamUnavailable
from relayer.sidecar_client import SidecarClient, SidecarRejected, SidecarUnavailable

logger = logging.getLogger("memwal.hydration")


@dataclass(frozen=True)
class Hydrated:
    texts: dict[str, str]  # blob_id -> plaintext
    dropped: int
    ciphertext_sizes: dict[str, int]  # blob_id -> stored size, for quota accounting


def sidecar_error(exc: Exception) -> ApiError:
    """Map a sidecar failure to the client-facing error."""
    if isinstance(exc, SidecarRejected):
        if exc.kind == "InvalidSession":
            return BadRequest(f"x-seal-session rejected: {exc.message}")
        if exc.kind == "NoAccess":
            return Forbidden("Seal key servers denied access to these memories")
        return BadRequest(exc.message or exc.kind)
    return UpstreamUnavailable("Upstream temporarily unavailable")


def require_session(session: str | None) -> str:
    if not session:
        raise BadRequest("This endpoint needs the x-seal-session header (sent by the official SDKs)")
    return session


async def recall_memories(services, ctx, vector: list[float], namespace: str, limit: int, *, session: str):
    """Search the caller's scope and decrypt the hits: ``(hits in distance order, Hydrated)``."""
    hits = await services.vectors.search(ctx.auth.owner, namespace, vector, limit)
    hydrated = await hydrate(
        services.sidecar, services.vectors, owner=ctx.auth.owner, account_id=ctx.auth.account_id,
        package_id=services.settings.package_id, session=session, blob_ids=[hit.blob_id for hit in hits],
        request_id=ctx.request_id,
    )
    return hits, hydrated


async def hydrate(
    sidecar: SidecarClient,
    vectors,
    *,
    owner: str,
    account_id: str,
    package_id: str,
    session: str,
    blob_ids: Sequence[str],
    request_id: str | None = None,
) -> Hydrated:
    unique = list(dict.fromkeys(blob_ids))
    if not unique:
        return Hydrated({}, 0, {})
    try:
        reads = await sidecar.read(unique, request_id=request_id)
    except (SidecarUnavailable, SidecarRejected) as exc:
        raise sidecar_error(exc) from None
    dropped = 0
    available: list[str] = []
    for blob_id in unique:
        read = reads.get(blob_id)
        if read is None or read.data is None:
            dropped += 1
            if read is not None and read.status == "not_found":
                await vectors.delete_by_blob(owner, blob_id)
            continue
        available.append(blob_id)
    if not available:
        return Hydrated({}, dropped, {})
    try:
        results, failures = await sidecar.decrypt_batch(
            [reads[b].data for b in available], package_id=package_id, account_id=account_id, session=session,
            request_id=request_id,
        )
    except (SidecarUnavailable, SidecarRejected) as exc:
        raise sidecar_error(exc) from None
    texts: dict[str, str] = {}
    for index, blob_id in enumerate(available):
        data = results.get(index)
        if data is None:
            dropped += 1
            failure = failures.get(index)
            if failure is not None and failure.permanent:
                logger.warning("deleting index rows of a corrupt blob")
                await vectors.delete_by_blob(owner, blob_id)
            continue
        try:
            texts[blob_id] = data.decode("utf-8")
        except UnicodeDecodeError:
            dropped += 1
    sizes = {blob_id: len(reads[blob_id].data or b"") for blob_id in texts}
    return Hydrated(texts, dropped, sizes)
