"""Storage quota: the owner's ciphertext bytes across all namespaces, checked under a lock.

Upstream (memwal.md §3) takes ``pg_advisory_xact_lock(key(owner))`` and sums ``blob_size_bytes``
inside one transaction, so checks for the same owner run one at a time. Nothing is reserved:
the lock only orders the checks; the bytes count once the vector row is written.
"""

from __future__ import annotations

from relayer.database.errors import QuotaExceeded
from relayer.database.pool import Database

_FNV_OFFSET_BASIS = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_UINT64 = (1 << 64) - 1
MEBIBYTE = 1_048_576


def owner_lock_key(owner: str) -> int:
    """Upstream's advisory-lock key: 64-bit FNV over the owner's UTF-8 bytes, high ^ low 32 bits.

    Upstream names it FNV-1a but multiplies before XOR-ing each byte (the FNV-1 order). We keep its
    exact arithmetic so a Python and a Rust relayer sharing one database take the same lock.
    """
    value = _FNV_OFFSET_BASIS
    for byte in owner.encode("utf-8"):
        value = ((value * _FNV_PRIME) & _UINT64) ^ byte
    return (value >> 32) ^ (value & 0xFFFFFFFF)


async def check_storage_quota(database: Database, owner: str, new_bytes: int, limit_bytes: int) -> int:
    """Raise ``QuotaExceeded`` if storing ``new_bytes`` more would pass ``limit_bytes``.

    ``limit_bytes <= 0`` means unlimited. Returns the bytes the owner used before this write.
    """
    if new_bytes < 0:
        raise ValueError("new_bytes must not be negative")
    if limit_bytes <= 0:
        return 0
    async with database.transaction() as connection:
        await connection.execute("SELECT pg_advisory_xact_lock($1)", owner_lock_key(owner))
        used = await connection.fetchval(
            "SELECT coalesce(sum(blob_size_bytes), 0)::bigint FROM vector_entries WHERE owner = $1", owner
        )
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
