"""``vector_entries``: the per-owner memory index (embedding + Walrus blob id, never plaintext).

Every query is scoped by owner; nothing here can read or change another owner's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from relayer.database.errors import ConstraintViolation
from relayer.database.forgetting import is_forgotten, lock_memory
from relayer.database.pool import Database, affected_rows
from relayer.database.vector_search import (
    DEFAULT_SEARCH_TUNING,
    Hit,
    SearchTuning,
    as_embedding,
    detect_search_tuning,
    search_scope,
)

DEFAULT_NAMESPACE = "default"
DEFAULT_IMPORTANCE = 0.5


@dataclass(frozen=True)
class VectorEntry:
    id: str  # the remember job id, so a retried job overwrites instead of duplicating
    owner: str
    blob_id: str
    embedding: Sequence[float]
    namespace: str = DEFAULT_NAMESPACE
    blob_size_bytes: int = 0  # ciphertext size, counted against the storage quota
    importance: float = DEFAULT_IMPORTANCE
    agent_id: str | None = None  # the delegate key (hex) that wrote it, for the owner's memory listing
    package_id: str | None = None
    tags: tuple[str, ...] = ()  # plaintext labels the caller chose (recall can filter on them)
    expires_at: datetime | None = None  # the TTL's end: hidden from then on, forgotten by the expiry sweep


@dataclass(frozen=True)
class ScopeStats:
    memory_count: int
    storage_bytes: int


_UPSERT = """
INSERT INTO vector_entries (id, owner, namespace, blob_id, embedding, blob_size_bytes, importance, agent_id, package_id,
                            tags, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (id) DO UPDATE SET
    blob_id = EXCLUDED.blob_id,
    agent_id = EXCLUDED.agent_id,
    package_id = EXCLUDED.package_id,
    embedding = EXCLUDED.embedding,
    namespace = EXCLUDED.namespace,
    blob_size_bytes = EXCLUDED.blob_size_bytes,
    importance = EXCLUDED.importance,
    tags = EXCLUDED.tags,
    expires_at = EXCLUDED.expires_at,
    updated_at = now()
WHERE vector_entries.owner = EXCLUDED.owner
RETURNING id
"""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class VectorStore:
    def __init__(
        self, database: Database, *, reads: Database | None = None, tuning: SearchTuning | None = DEFAULT_SEARCH_TUNING,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """``reads``: a read replica (DATABASE_READ_URL) for ``search``, the recall query; it may trail writes.
        ``tuning`` None: aimed at the HNSW index the table has, read on the first search (the database may be
        down at boot)."""
        self._database = database
        self._reads = reads or database
        self._tuning = tuning
        self._clock = clock  # what "expired" is measured against

    async def upsert(self, entry: VectorEntry) -> bool:
        """Insert or replace the row ``entry.id``; replaying the same entry changes nothing visible.

        Returns False, writing nothing, when the memory was forgotten (relayer/database/forgetting.py): a job
        that finishes after its memory's forget must not bring it back. Raises ``ConstraintViolation`` if the
        id already belongs to another owner.
        """
        if entry.blob_size_bytes < 0:
            raise ValueError("blob_size_bytes must not be negative")
        embedding = as_embedding(entry.embedding)
        async with self._database.transaction() as connection:
            await lock_memory(connection, entry.id)
            if await is_forgotten(connection, entry.id):
                # Forgotten before its upload finished: the tombstone learns the blob, so restore skips it too.
                await connection.execute(
                    "UPDATE forgotten_memories SET blob_id = $3 WHERE memory_id = $1 AND owner = $2 AND blob_id IS NULL",
                    entry.id, entry.owner, entry.blob_id,
                )
                return False
            written = await connection.fetchval(
                _UPSERT, entry.id, entry.owner, entry.namespace, entry.blob_id, embedding,
                entry.blob_size_bytes, float(entry.importance), entry.agent_id, entry.package_id,
                list(entry.tags), entry.expires_at,
            )
        if written is None:
            raise ConstraintViolation(f"vector entry {entry.id} belongs to another owner")
        return True

    async def is_forgotten(self, memory_id: str) -> bool:
        """Whether ``memory_id`` was forgotten (a queued job then skips its upload)."""
        async with self._database.connection() as connection:
            return await is_forgotten(connection, memory_id)

    async def search(
        self, owner: str, namespace: str, query_vector: Sequence[float], limit: int, *, tags: Sequence[str] = ()
    ) -> list[Hit]:
        """Nearest unexpired memories first, only those carrying every one of ``tags``; exact for small scopes,
        near-exact for large ones."""
        if self._tuning is None:
            self._tuning = await detect_search_tuning(self._database)
        hits = await search_scope(self._reads, owner, namespace, query_vector, limit, self._tuning,
                                  visible_at=self._clock(), tags=tags)
        if self._reads is self._database or not hits:
            return hits
        # A replica may not have replayed a forget yet: the primary's tombstones decide (an acknowledged forget
        # is never undone by replication lag).
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                "SELECT memory_id FROM forgotten_memories WHERE memory_id = ANY($1::text[])", [hit.id for hit in hits]
            )
        forgotten = {row["memory_id"] for row in rows}
        return [hit for hit in hits if hit.id not in forgotten]

    async def blob_ids_in(self, owner: str, namespace: str, blob_ids: Collection[str]) -> set[str]:
        """Which of ``blob_ids`` are already indexed in (owner, namespace) (restore skips them)."""
        if not blob_ids:
            return set()
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                "SELECT DISTINCT blob_id FROM vector_entries"
                " WHERE owner = $1 AND namespace = $2 AND blob_id = ANY($3::text[])",
                owner, namespace, list(blob_ids),
            )
        return {row["blob_id"] for row in rows}

    async def delete_by_blob(self, owner: str, blob_id: str) -> int:
        """Drop the owner's rows for a blob that is gone for good; returns the rows deleted."""
        async with self._database.connection() as connection:
            status = await connection.execute(
                "DELETE FROM vector_entries WHERE owner = $1 AND blob_id = $2", owner, blob_id
            )
        return affected_rows(status)

    async def forget(self, owner: str, namespace: str) -> int:
        """Delete every row of (owner, namespace); returns how many."""
        async with self._database.connection() as connection:
            status = await connection.execute(
                "DELETE FROM vector_entries WHERE owner = $1 AND namespace = $2", owner, namespace
            )
        return affected_rows(status)

    async def stats(self, owner: str, namespace: str) -> ScopeStats:
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                "SELECT count(*) AS memory_count, coalesce(sum(blob_size_bytes), 0)::bigint AS storage_bytes"
                " FROM vector_entries WHERE owner = $1 AND namespace = $2",
                owner, namespace,
            )
        return ScopeStats(memory_count=row["memory_count"], storage_bytes=row["storage_bytes"])

    async def storage_used(self, owner: str) -> int:
        """Ciphertext bytes across all the owner's namespaces."""
        async with self._database.connection() as connection:
            return await connection.fetchval(
                "SELECT coalesce(sum(blob_size_bytes), 0)::bigint FROM vector_entries WHERE owner = $1", owner
            )
