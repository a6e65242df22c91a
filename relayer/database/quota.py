"""Storage quota: the owner's ciphertext bytes across all namespaces, one read per check.

Upstream (memwal.md §3) sums ``blob_size_bytes`` inside a transaction holding
``pg_advisory_xact_lock(key(owner))``. Nothing is reserved and the bytes count only once the vector row
is written (in another transaction, which takes no such lock), so the lock changes no verdict: a check
under it answers what the same read would answer the moment the lock is granted. What the lock did do
was make every check of one owner wait for the one before, across four round trips (BEGIN, lock, sum,
COMMIT): with three checks per remembered memory it was what bounded one owner's remember throughput
(docs/performance.md). So the check is one statement here; a relayer that still takes upstream's lock on
a shared database neither waits for us nor changes our answer.
"""

from __future__ import annotations

from relayer.database.errors import QuotaExceeded
from relayer.database.pool import Database

MEBIBYTE = 1_048_576
_USED_BYTES = "SELECT coalesce(sum(blob_size_bytes), 0)::bigint FROM vector_entries WHERE owner = $1"


async def check_storage_quota(database: Database, owner: str, new_bytes: int, limit_bytes: int) -> int:
    """Raise ``QuotaExceeded`` if storing ``new_bytes`` more would pass ``limit_bytes``.

    ``limit_bytes <= 0`` means unlimited. Returns the bytes the owner used before this write.
    """
    if new_bytes < 0:
        raise ValueError("new_bytes must not be negative")
    if limit_bytes <= 0:
        return 0
    async with database.connection() as connection:
        used = await connection.fetchval(_USED_BYTES, owner)
    if used + new_bytes > limit_bytes:
        raise QuotaExceeded(
            f"Storage quota exceeded: {used / MEBIBYTE:.1f}MB used of {limit_bytes / MEBIBYTE:.1f}MB allowed"
        )
    return used


class StorageQuota:
    """``check_storage_quota`` bound to one database and one limit (``limit_bytes <= 0``: unlimited)."""

    def __init__(self, database: Database, *, limit_bytes: int) -> None:
        self._database = database
        self._limit_bytes = limit_bytes

    async def check(self, owner: str, new_bytes: int) -> None:
        """Raise ``QuotaExceeded`` when ``new_bytes`` more would pass the owner's quota."""
        await check_storage_quota(self._database, owner, new_bytes, self._limit_bytes)
