"""Forgetting one memory: its index row goes and a tombstone takes its place, in one transaction.

The tombstone (``forgotten_memories``, migration 006) is what makes forget safe and repeatable:

- a repeated forget finds it and answers as the first one did;
- a remember job still running for that memory (memory id = job id) finds it before it indexes, and skips
  the index row (``VectorStore.upsert``), so a forget acknowledged mid-job is never undone by the job;
- ``/api/restore`` skips the blob it names, so a forgotten memory is not re-indexed from Walrus.

Forget and the job's upsert take the same per-memory advisory lock, so one of them runs entirely first:
either the forget sees the index row and deletes it, or the upsert sees the tombstone. Nothing else is
written after the commit, so a crash at any point leaves either the memory (not acknowledged) or the
tombstone without the row (acknowledged): never an acknowledged forget with a recallable memory.

Every query is scoped by owner: another owner's memory id reads as absent.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import asyncpg

from relayer.database.pool import Database, affected_rows

# The class id of the two-key advisory locks taken per memory: the two-key lock space is apart from the
# one-key locks of migrations and quotas, so neither can wait on the other.
MEMORY_LOCK_CLASS = 0x6D656D31  # "mem1"


class ForgetReason(StrEnum):
    FORGOTTEN = "forgotten"  # the owner asked
    EXPIRED = "expired"  # the memory's TTL ran out (the expiry sweep)


@dataclass(frozen=True)
class Tombstone:
    memory_id: str
    owner: str
    blob_id: str | None  # None: forgotten before the upload finished
    reason: ForgetReason
    forgotten_at: datetime


@dataclass(frozen=True)
class ExpiredMemory:
    memory_id: str
    owner: str


async def lock_memory(connection: asyncpg.Connection, memory_id: str) -> None:
    """Serialise with every other forget or index write of ``memory_id`` until the transaction ends."""
    await connection.execute("SELECT pg_advisory_xact_lock($1::int4, hashtext($2))", MEMORY_LOCK_CLASS, memory_id)


async def is_forgotten(connection: asyncpg.Connection, memory_id: str) -> bool:
    return bool(await connection.fetchval("SELECT EXISTS (SELECT 1 FROM forgotten_memories WHERE memory_id = $1)", memory_id))


def _utc_now() -> datetime:
    return datetime.now(UTC)


_TOMBSTONE = "SELECT memory_id, owner, blob_id, reason, forgotten_at FROM forgotten_memories WHERE memory_id = $1 AND owner = $2"


class ForgetStore:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._database = database
        self.clock = clock

    async def forget(self, owner: str, memory_id: str, reason: ForgetReason) -> Tombstone | None:
        """Forget the owner's memory ``memory_id``; None when the owner has no such memory (nor had one).

        A memory counts when it is indexed or when the owner's remember job of that id exists (a memory
        forgotten while its job runs is never indexed). An existing tombstone is returned unchanged.
        """
        async with self._database.transaction() as connection:
            await lock_memory(connection, memory_id)
            earlier = await connection.fetchrow(_TOMBSTONE, memory_id, owner)
            if earlier is not None:
                return _tombstone(earlier)
            blob_id = await connection.fetchval(
                "DELETE FROM vector_entries WHERE id = $1 AND owner = $2 RETURNING blob_id", memory_id, owner
            )
            if blob_id is None:
                job = await connection.fetchrow("SELECT blob_id FROM remember_jobs WHERE id = $1 AND owner = $2", memory_id, owner)
                if job is None:
                    return None
                blob_id = job["blob_id"]
            row = await connection.fetchrow(
                "INSERT INTO forgotten_memories (memory_id, owner, blob_id, reason, forgotten_at)"
                " VALUES ($1, $2, $3, $4, $5) RETURNING memory_id, owner, blob_id, reason, forgotten_at",
                memory_id, owner, blob_id, reason.value, self.clock(),
            )
        return _tombstone(row)

    async def expired(self, limit: int) -> list[ExpiredMemory]:
        """Up to ``limit`` indexed memories whose TTL has run out, the longest expired first."""
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                "SELECT id, owner FROM vector_entries WHERE expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
                self.clock(), limit,
            )
        return [ExpiredMemory(row["id"], row["owner"]) for row in rows]

    async def forgotten_blob_ids(self, owner: str, blob_ids: Collection[str]) -> set[str]:
        """Which of ``blob_ids`` belong to memories the owner forgot (restore leaves them alone)."""
        if not blob_ids:
            return set()
        async with self._database.connection() as connection:
            rows = await connection.fetch(
                "SELECT DISTINCT blob_id FROM forgotten_memories WHERE owner = $1 AND blob_id = ANY($2::text[])",
                owner, list(blob_ids),
            )
        return {row["blob_id"] for row in rows}

    async def prune(self, older_than: timedelta, limit: int) -> int:
        """Drop up to ``limit`` tombstones older than ``older_than`` whose remember job is final or gone."""
        async with self._database.connection() as connection:
            status = await connection.execute(
                """
                DELETE FROM forgotten_memories WHERE memory_id IN (
                    SELECT memory_id FROM forgotten_memories AS tombstone
                    WHERE forgotten_at < $1
                      AND NOT EXISTS (SELECT 1 FROM remember_jobs AS job WHERE job.id = tombstone.memory_id
                                      AND job.status IN ('pending', 'running', 'uploaded'))
                    ORDER BY forgotten_at
                    LIMIT $2
                )
                """,
                self.clock() - older_than, limit,
            )
        return affected_rows(status)


def _tombstone(row: asyncpg.Record) -> Tombstone:
    return Tombstone(row["memory_id"], row["owner"], row["blob_id"], ForgetReason(row["reason"]), row["forgotten_at"])
