"""``vector_entries``: the per-owner memory index (embedding + Walrus blob id, never plaintext).

Every query is scoped by owner; nothing here can read or change another owner's rows.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from relayer.database.errors import ConstraintViolation
from relayer.database.pool import Database, affected_rows
from relayer.database.vector_search import DEFAULT_SEARCH_TUNING, Hit, SearchTuning, as_embedding, search_scope

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


@dataclass(frozen=True)
class ScopeStats:
    memory_count: int
    storage_bytes: int


_UPSERT = """
INSERT INTO vector_entries (id, owner, namespace, blob_id, embedding, blob_size_bytes, importance, agent_id, package_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (id) DO UPDATE SET
    blob_id = EXCLUDED.blob_id,
    agent_id = EXCLUDED.agent_id,
    package_id = EXCLUDED.package_id,
    embedding = EXCLUDED.embedding,
    namespace = EXCLUDED.namespace,
    blob_size_bytes = EXCLUDED.blob_size_bytes,
    importance = EXCLUDED.importance,
    updated_at = now()
WHERE vector_entries.owner = EXCLUDED.owner
RETURNING id
"""


class VectorStore:
    def __init__(
        self, database: Database, *, reads: Database | None = None, tuning: SearchTuning = DEFAULT_SEARCH_TUNING
    ) -> None:
        """``reads``: a read replica (DATABASE_READ_URL) for ``search``, the recall query; it may trail writes."""
        self._database = database
        self._reads = reads or database
        self._tuning = tuning

    async def upsert(self, entry: VectorEntry) -> None:
        """Insert or replace the row ``entry.id``; replaying the same entry changes nothing visible.

        Raises ``ConstraintViolation`` if the id already belongs to another owner.
        """
        if entry.blob_size_bytes < 0:
            raise ValueError("blob_size_bytes must not be negative")
        embedding = as_embedding(entry.embedding)
        async with self._database.connection() as connection:
            written = await connection.fetchval(
                _UPSERT, entry.id, entry.owner, entry.namespace, entry.blob_id, embedding,
                entry.blob_size_bytes, float(entry.importance), entry.agent_id, entry.package_id,
            )
        if written is None:
            raise ConstraintViolation(f"vector entry {entry.id} belongs to another owner")

    async def search(self, owner: str, namespace: str, query_vector: Sequence[float], limit: int) -> list[Hit]:
        """Nearest memories first; exact for small scopes, near-exact for large ones."""
        return await search_scope(self._reads, owner, namespace, query_vector, limit, self._tuning)

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
