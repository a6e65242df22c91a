from __future__ import annotations

import asyncio

import numpy as np
import pytest

from relayer.database.errors import QuotaExceeded
from relayer.database.pool import Database
from relayer.database.quota import MEBIBYTE, check_storage_quota
from relayer.database.vectors import VectorEntry, VectorStore

pytestmark = pytest.mark.database

ALICE = "0x" + "a" * 64
BOB = "0x" + "b" * 64
EMBEDDING = np.linspace(0.1, 1.0, 1536, dtype=np.float32)


async def _store(database: Database, owner: str, namespace: str, size: int, entry_id: str) -> None:
    await VectorStore(database).upsert(VectorEntry(entry_id, owner, f"blob-{entry_id}", EMBEDDING, namespace, size))


# Upstream's per-owner advisory-lock key (64-bit FNV-1 folded high ^ low), as a relayer sharing the database takes it.
def upstream_owner_lock_key(owner: str) -> int:
    value = 0xCBF29CE484222325
    for byte in owner.encode("utf-8"):
        value = ((value * 0x100000001B3) & (2**64 - 1)) ^ byte
    return (value >> 32) ^ (value & 0xFFFFFFFF)


class TestCheckStorageQuota:
    async def test_counts_every_namespace_of_the_owner_only(self, database: Database) -> None:
        await _store(database, ALICE, "notes", 600_000, "1")
        await _store(database, ALICE, "work", 400_000, "2")
        await _store(database, BOB, "notes", 5_000_000, "3")
        assert await check_storage_quota(database, ALICE, 48_576, MEBIBYTE) == 1_000_000
        with pytest.raises(QuotaExceeded, match=r"^Storage quota exceeded: 1\.0MB used of 1\.0MB allowed$"):
            await check_storage_quota(database, ALICE, 48_577, MEBIBYTE)

    async def test_message_uses_mebibytes_with_one_decimal(self, database: Database) -> None:
        await _store(database, ALICE, "notes", 3 * MEBIBYTE // 2, "1")
        with pytest.raises(QuotaExceeded, match=r"^Storage quota exceeded: 1\.5MB used of 2\.0MB allowed$"):
            await check_storage_quota(database, ALICE, MEBIBYTE, 2 * MEBIBYTE)

    @pytest.mark.parametrize("limit", [0, -1])
    async def test_non_positive_limit_is_unlimited(self, database: Database, limit: int) -> None:
        await _store(database, ALICE, "notes", 10 * MEBIBYTE, "1")
        assert await check_storage_quota(database, ALICE, 10**12, limit) == 0

    async def test_negative_new_bytes_is_refused(self, database: Database) -> None:
        with pytest.raises(ValueError, match="must not be negative"):
            await check_storage_quota(database, ALICE, -1, MEBIBYTE)

    async def test_a_check_does_not_wait_for_upstreams_owner_lock(self, database: Database) -> None:
        # An upstream relayer on the same database holds the owner's lock mid-check: ours answers regardless
        # (the lock reserves nothing, so waiting for it would change no verdict, only serialise the owner).
        await _store(database, ALICE, "notes", 9_000, "1")
        async with database.transaction() as holder:
            await holder.execute("SELECT pg_advisory_xact_lock($1)", upstream_owner_lock_key(ALICE))
            assert await asyncio.wait_for(check_storage_quota(database, ALICE, 1_000, 10_000), timeout=30) == 9_000

    async def test_many_concurrent_checks_all_finish_with_the_same_verdict(self, database: Database) -> None:
        await _store(database, ALICE, "notes", 9_000, "1")
        checks = [check_storage_quota(database, ALICE, 1_000, 10_000) for _ in range(10)]
        checks += [check_storage_quota(database, ALICE, 1_001, 10_000) for _ in range(10)]
        results = await asyncio.wait_for(asyncio.gather(*checks, return_exceptions=True), timeout=10)
        assert results[:10] == [9_000] * 10
        assert all(isinstance(result, QuotaExceeded) for result in results[10:])
