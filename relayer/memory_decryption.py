"""Turn vector hits into plaintext memories with one sidecar call (it reads and decrypts; we never see ciphertext).

``dropped`` counts hits that could not be opened: gone, corrupt, unavailable right now, or not UTF-8. Index
rows are deleted only when the blob is provably gone (every aggregator answered 404) or its ciphertext is
corrupt — never on a timeout, and never because the caller's credential was refused (upstream deletes rows
on a bad credential; we do not).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from relayer.auth import AuthInfo
from relayer.database.vector_search import Hit
from relayer.database.vectors import VectorStore
from relayer.errors import SealSessionMissing
from relayer.sidecar_client import SidecarApi
from sidecar.protocol import BlobStatus

logger = logging.getLogger("memwal.memory_decryption")

_GONE = (BlobStatus.NOT_FOUND, BlobStatus.CORRUPT)


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
    def __init__(self, *, vectors: VectorStore, sidecar: SidecarApi, package_id: str) -> None:
        self._vectors = vectors
        self._sidecar = sidecar
        self._package_id = package_id

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
        texts: dict[str, str] = {}
        sizes: dict[str, int] = {}
        dropped = 0
        for blob_id in unique:
            outcome = outcomes[blob_id]
            if outcome.status in _GONE:
                logger.warning("deleting index rows of a %s blob", outcome.status.value)
                await self._vectors.delete_by_blob(auth.owner, blob_id)
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
