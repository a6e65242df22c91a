"""Turn vector hits into plaintext memories with one sidecar call (it reads and decrypts; we never see ciphertext).

``dropped`` counts hits that could not be opened: gone, corrupt, unavailable right now, or not UTF-8. Index
rows are deleted only when the blob is provably gone or its ciphertext is corrupt — never on a timeout, and
never because the caller's credential was refused (upstream deletes rows on a bad credential; we do not).
"Provably gone" takes two witnesses: every aggregator answered 404, *and* the chain no longer shows the
owner's Blob object for it (deleted, burned after expiry, or given away). A 404 alone is not enough: Walrus
answers 404 for a while right after certification and during aggregator outages, so then the hit is only
dropped from this answer (and counted), and the row stays for the next recall.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from chain.errors import ChainError
from chain.reader import ChainReader
from relayer.auth import AuthInfo
from relayer.database.vector_search import Hit
from relayer.database.vectors import VectorStore
from relayer.errors import SealSessionMissing
from relayer.sidecar_client import SidecarApi
from sidecar.protocol import BlobStatus

logger = logging.getLogger("memwal.memory_decryption")

MissCounter = Callable[[str], None]  # called with "deleted" or "kept" for each blob every aggregator called missing


class BlobLiveness(Protocol):
    async def gone(self, owner: str, blob_ids: Collection[str]) -> set[str]:
        """Those of ``blob_ids`` whose on-chain Blob object the owner no longer holds; empty when unsure."""


class ChainBlobLiveness:
    """The owner's Blob objects of the Walrus package, as the chain shows them now."""

    def __init__(self, chain: ChainReader, walrus_package_id: str) -> None:
        self._chain = chain
        self._walrus_package_id = walrus_package_id

    async def gone(self, owner: str, blob_ids: Collection[str]) -> set[str]:
        try:
            held = {blob.blob_id for blob in await self._chain.owned_blobs(owner, self._walrus_package_id)}
        except ChainError as exc:
            logger.warning("cannot check blob objects on chain (%s): keeping the index rows", type(exc).__name__)
            return set()
        return {blob_id for blob_id in blob_ids if blob_id not in held}


@dataclass(frozen=True)
class OpenedMemories:
    texts: dict[str, str]  # blob_id -> plaintext
    dropped: int
    ciphertext_sizes: dict[str, int]  # blob_id -> stored size, for quota accounting


def seal_session(auth: AuthInfo) -> str:
    """The caller's x-seal-session; routes that decrypt refuse requests without one."""
    if not auth.seal_session:
        raise SealSessionMissing()
    return auth.seal_session


class MemoryReader:
    def __init__(
        self, *, vectors: VectorStore, sidecar: SidecarApi, package_id: str, liveness: BlobLiveness,
        on_miss: MissCounter | None = None,
    ) -> None:
        self._vectors = vectors
        self._sidecar = sidecar
        self._package_id = package_id
        self._liveness = liveness
        self._on_miss = on_miss or (lambda action: None)

    async def recall(
        self, auth: AuthInfo, namespace: str, vector: Sequence[float], limit: int, *, session: str, request_id: str | None
    ) -> tuple[list[Hit], OpenedMemories]:
        """Search the caller's scope and open the hits: ``(hits in distance order, OpenedMemories)``."""
        hits = await self._vectors.search(auth.owner, namespace, vector, limit)
        opened = await self.open(auth, [hit.blob_id for hit in hits], session=session, request_id=request_id)
        return hits, opened

    async def open(self, auth: AuthInfo, blob_ids: Sequence[str], *, session: str, request_id: str | None) -> OpenedMemories:
        unique = list(dict.fromkeys(blob_ids))
        if not unique:
            return OpenedMemories({}, 0, {})
        outcomes = await self._sidecar.open_blobs(
            unique, package_id=self._package_id, account_id=auth.account_id, session=session, request_id=request_id
        )
        missing = [blob_id for blob_id in unique if outcomes[blob_id].status is BlobStatus.NOT_FOUND]
        gone = await self._liveness.gone(auth.owner, missing) if missing else set()
        texts: dict[str, str] = {}
        sizes: dict[str, int] = {}
        dropped = 0
        for blob_id in unique:
            outcome = outcomes[blob_id]
            if outcome.status is BlobStatus.CORRUPT or blob_id in gone:
                logger.warning("deleting index rows of a %s blob", "corrupt" if outcome.status is BlobStatus.CORRUPT else "gone")
                await self._vectors.delete_by_blob(auth.owner, blob_id)
            if outcome.status is BlobStatus.NOT_FOUND:
                self._on_miss("deleted" if blob_id in gone else "kept")
            if outcome.plaintext is None:
                dropped += 1
                continue
            try:
                texts[blob_id] = outcome.plaintext.decode("utf-8")
            except UnicodeDecodeError:
                dropped += 1
                continue
            sizes[blob_id] = outcome.ciphertext_bytes or 0
        return OpenedMemories(texts, dropped, sizes)
