from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pytest

from relayer.database.errors import InvalidCursor, InvalidLimit
from relayer.database.memory_listing import MAX_PAGE_SIZE, MemoryCursor, decode_cursor, encode_cursor, list_memories
from relayer.database.pool import Database
from relayer.database.vectors import VectorEntry, VectorStore

pytestmark = pytest.mark.database

ALICE = "0x" + "a" * 64
BOB = "0x" + "b" * 64
EMBEDDING = np.linspace(0.1, 1.0, 1536, dtype=np.float32)


async def _add(database: Database, owner: str, entry_id: str, namespace: str = "notes", size: int = 10) -> None:
    await VectorStore(database).upsert(VectorEntry(entry_id, owner, f"blob-{entry_id}", EMBEDDING, namespace, size,
                                                   agent_id="ab" * 32, package_id="0x" + "c" * 64))


async def _walk(database: Database, owner: str, limit: int, between_pages=None) -> tuple[list[str], set[int]]:
    """Every page of one walk; ``between_pages`` runs after each page but the last."""
    ids: list[str] = []
    snapshots: set[int] = set()
    cursor = None
    while True:
        page = await list_memories(database, owner, cursor, limit)
        ids += [row.memory_id for row in page.memories]
        snapshots.add(page.snapshot_version)
        if page.next_cursor is None:
            assert not page.has_more
            return ids, snapshots
        assert page.has_more and len(page.memories) == limit
        cursor = page.next_cursor
        if between_pages is not None:
            await between_pages()


class TestListMemories:
    async def test_rows_carry_the_upstream_fields_and_stay_per_owner(self, database: Database) -> None:
        await _add(database, ALICE, "m1", "work", 123)
        await _add(database, BOB, "m2")
        page = await list_memories(database, ALICE)
        [row] = page.memories
        assert (row.memory_id, row.namespace, row.blob_id, row.size) == ("m1", "work", "blob-m1", 123)
        assert (row.agent_id, row.package_id, row.end_epoch, row.expires_at) == ("ab" * 32, "0x" + "c" * 64, None, None)
        assert row.created_at.tzinfo is not None and page.next_cursor is None and page.snapshot_version > 0

    async def test_status_is_expired_only_after_expires_at(self, database: Database) -> None:
        await _add(database, ALICE, "m1")
        expiry = datetime(2026, 6, 1, tzinfo=UTC)
        async with database.connection() as connection:
            await connection.execute("UPDATE vector_entries SET end_epoch = 42, expires_at = $1", expiry)
        [row] = (await list_memories(database, ALICE)).memories
        assert row.end_epoch == 42
        assert row.status(expiry - timedelta(seconds=1)) == "active" and row.status(expiry + timedelta(seconds=1)) == "expired"

    async def test_pages_cover_every_row_once(self, database: Database) -> None:
        for i in range(11):
            await _add(database, ALICE, f"m{i:02d}")
        ids, snapshots = await _walk(database, ALICE, 3)
        assert sorted(ids) == [f"m{i:02d}" for i in range(11)] and len(snapshots) == 1

    async def test_limits(self, database: Database) -> None:
        with pytest.raises(InvalidLimit):
            await list_memories(database, ALICE, limit=0)
        for i in range(3):
            await _add(database, ALICE, f"m{i}")
        assert len((await list_memories(database, ALICE, limit=MAX_PAGE_SIZE * 10)).memories) == 3


class TestConcurrentWrites:
    """A walk at one snapshot_version neither skips nor repeats a row, whatever commits while it runs."""

    async def test_inserts_updates_and_a_transaction_that_began_before_the_walk(
        self, database: Database, database_url: str
    ) -> None:
        for i in range(12):
            await _add(database, ALICE, f"old{i:02d}")
        # A writer whose transaction began before the walk and commits in the middle of it: its row is older by
        # updated_at than rows the walk has already passed (an updated_at keyset would skip it for good).
        straggler = await asyncpg.connect(database_url)
        await straggler.execute("BEGIN")
        await straggler.execute(
            "INSERT INTO vector_entries (id, owner, blob_id, embedding, updated_at) VALUES ('late', $1, 'b', $2, now())",
            ALICE, "[" + ",".join(["0.5"] * 1536) + "]",
        )
        written = 0

        async def write_between_pages() -> None:
            nonlocal written
            written += 1
            await asyncio.gather(*(_add(database, ALICE, f"new{written:02d}-{k}") for k in range(2)))
            await _add(database, ALICE, f"old{written:02d}")  # rewrites a row (the upsert of a retried job)
            if written == 2:
                await straggler.execute("COMMIT")

        try:
            ids, snapshots = await _walk(database, ALICE, 3, between_pages=write_between_pages)
        finally:
            await straggler.close()
        assert len(snapshots) == 1  # every page of the walk at one snapshot_version
        assert len(ids) == len(set(ids))  # nothing repeated
        rewritten = {f"old{n:02d}" for n in range(1, written + 1)}
        # Nothing skipped: every row committed before the walk and not rewritten during it was served.
        assert {f"old{i:02d}" for i in range(12)} - rewritten <= set(ids)
        assert not any(memory_id.startswith("new") for memory_id in ids) and "late" not in ids  # left for the next walk
        # The next walk sees everything, once.
        again, _ = await _walk(database, ALICE, 4)
        expected = {f"old{i:02d}" for i in range(12)} | {f"new{n:02d}-{k}" for n in range(1, written + 1) for k in range(2)}
        assert sorted(again) == sorted(expected | {"late"})


class TestCursor:
    def test_round_trip(self) -> None:
        cursor = MemoryCursor(2**63, 17, "job-ü")
        assert decode_cursor(encode_cursor(cursor)) == cursor

    @pytest.mark.parametrize("payload", [
        {"v": 2, "s": 1, "r": 1, "i": "x"},
        {"v": 1, "s": -1, "r": 1, "i": "x"},
        {"v": 1, "s": 2**64, "r": 1, "i": "x"},
        {"v": 1, "s": 1, "r": True, "i": "x"},
        {"v": 1, "s": 1, "r": 1, "i": 5},
        {"v": 1, "s": 1, "r": 1},
        [1, 2],
    ])
    def test_foreign_cursors_are_refused(self, payload: object) -> None:
        raw = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
        with pytest.raises(InvalidCursor):
            decode_cursor(raw)

    @pytest.mark.parametrize("raw", ["***", "e30", "eyJ2IjoxLCJzIjoxLCJyIjoxLCJpIjoiXHVkODAwIn0", "\u00e9"])
    def test_garbage_is_refused(self, raw: str) -> None:
        with pytest.raises(InvalidCursor):
            decode_cursor(raw)
