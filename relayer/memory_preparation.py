"""Before the 202: embed each memory (a summary for long texts) and Seal-encrypt it for its owner.

The job row stores the ciphertext and the embedding, never the plaintext, so an accepted memory survives a
relayer crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from memwal_common.stage_timing import DISABLED as STAGES_OFF
from memwal_common.stage_timing import StageTimer
from relayer.auth import AuthInfo
from relayer.database.jobs import JobKind, NewJob
from relayer.embeddings import Embedder
from relayer.llm import LanguageModel
from relayer.memory_metadata import NO_METADATA, MemoryMetadata
from relayer.sidecar_client import SidecarApi


@dataclass(frozen=True)
class MemoryText:
    text: str
    namespace: str
    importance: float


@dataclass(frozen=True)
class PreparedMemory:
    namespace: str
    ciphertext: bytes
    embedding: list[float]
    importance: float


def remember_job(
    auth: AuthInfo, memory: PreparedMemory, kind: JobKind, *, idempotency_key: str | None = None,
    metadata: MemoryMetadata = NO_METADATA,
) -> NewJob:
    """The job that stores ``memory`` for the caller (the delegate key is recorded as the agent)."""
    return NewJob(
        owner=auth.owner,
        namespace=memory.namespace,
        ciphertext=memory.ciphertext,
        embedding=memory.embedding,
        kind=kind,
        importance=memory.importance,
        agent_id=auth.public_key_hex,
        idempotency_key=idempotency_key,
        tags=metadata.tags,
        expires_at=metadata.expires_at,
    )


class MemoryPreparer:
    def __init__(self, *, llm: LanguageModel, embedder: Embedder, sidecar: SidecarApi, package_id: str,
                 stage_timer: StageTimer = STAGES_OFF) -> None:
        self._llm = llm
        self._stage_timer = stage_timer
        self._embedder = embedder
        self._sidecar = sidecar
        self._package_id = package_id

    async def prepare(self, owner: str, items: Sequence[MemoryText], *, request_id: str | None) -> list[PreparedMemory]:
        stage = self._stage_timer.stage
        with stage("request.summarize", request_id):
            embedding_texts = await asyncio.gather(*(self._llm.summarize_for_embedding(item.text) for item in items))
        vectors_task = asyncio.ensure_future(self._timed_embedding(list(embedding_texts), request_id))
        try:
            with stage("request.encrypt", request_id):  # runs while the embedding is computed
                ciphertexts = await asyncio.gather(
                    *(
                        self._sidecar.encrypt(item.text.encode("utf-8"), owner=owner, package_id=self._package_id,
                                              request_id=request_id)
                        for item in items
                    )
                )
        except BaseException:
            vectors_task.cancel()
            await asyncio.gather(vectors_task, return_exceptions=True)
            raise
        with stage("request.embed_rest", request_id):  # what the embedding took beyond the encryption
            vectors = await vectors_task
        return [
            PreparedMemory(item.namespace, ciphertext, vector, item.importance)
            for item, ciphertext, vector in zip(items, ciphertexts, vectors, strict=True)
        ]

    async def _timed_embedding(self, texts: list[str], request_id: str | None) -> list[list[float]]:
        with self._stage_timer.stage("request.embed", request_id):
            return await self._embedder.embed_many(texts)
