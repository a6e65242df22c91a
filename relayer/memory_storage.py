"""Upload a memory's ciphertext (quota first), then index it: the one copy of that sequence.

``/api/remember/manual`` runs it in the request; the job runner runs the two steps with a recorded stage
in between, so a crash between them resumes at ``index``. The entry id names both the upload (the sidecar
makes uploads idempotent per id) and the index row (upserts by id), so a retry never duplicates either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from relayer.database.quota import StorageQuota
from relayer.database.vectors import VectorEntry, VectorStore
from relayer.sidecar_client import SidecarApi
from sidecar.protocol import UploadReply, UploadRequest


@dataclass(frozen=True)
class MemoryRecord:
    entry_id: str  # the job id, or a fresh id for a manual remember
    owner: str
    namespace: str
    ciphertext: bytes
    embedding: Sequence[float]
    importance: float
    agent_id: str | None  # the delegate key that wrote it
    tags: tuple[str, ...] = ()
    expires_at: datetime | None = None  # the TTL's end


class MemoryStorage:
    def __init__(
        self, *, quota: StorageQuota, sidecar: SidecarApi, vectors: VectorStore, package_id: str, storage_epochs: int
    ) -> None:
        self._quota = quota
        self._sidecar = sidecar
        self._vectors = vectors
        self._package_id = package_id
        self._epochs = storage_epochs

    async def check_quota(self, owner: str, new_bytes: int) -> None:
        """Raise QuotaExceeded (402) when ``new_bytes`` more would pass the owner's storage quota."""
        await self._quota.check(owner, new_bytes)

    async def is_forgotten(self, memory: MemoryRecord) -> bool:
        return await self._vectors.is_forgotten(memory.entry_id)

    async def upload(self, memory: MemoryRecord, *, request_id: str | None = None) -> UploadReply:
        """Check the owner's quota, then store, tag and transfer the ciphertext (idempotent per entry id)."""
        await self._quota.check(memory.owner, len(memory.ciphertext))
        request = UploadRequest(
            data=memory.ciphertext,
            owner=memory.owner,
            namespace=memory.namespace,
            package_id=self._package_id,
            epochs=self._epochs,
            job_id=memory.entry_id,
            agent_id=memory.agent_id,
        )
        return await self._sidecar.upload(request, request_id=request_id)

    async def index(self, memory: MemoryRecord, blob_id: str) -> bool:
        """Write the index row; False when the memory was forgotten meanwhile (nothing written then)."""
        return await self._vectors.upsert(
            VectorEntry(
                id=memory.entry_id,
                owner=memory.owner,
                blob_id=blob_id,
                embedding=memory.embedding,
                namespace=memory.namespace,
                blob_size_bytes=len(memory.ciphertext),
                importance=memory.importance,
                agent_id=memory.agent_id,
                package_id=self._package_id,
                tags=memory.tags,
                expires_at=memory.expires_at,
            )
        )

    async def store(self, memory: MemoryRecord, *, request_id: str | None = None) -> UploadReply:
        upload = await self.upload(memory, request_id=request_id)
        await self.index(memory, upload.blob_id)
        return upload
