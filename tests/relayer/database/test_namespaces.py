from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import numpy as np
import pytest

from relayer.database.errors import InvalidCursor, InvalidLimit
from relayer.database.namespaces import MAX_PAGE_SIZE, CursorPosition, decode_cursor, encode_cursor, list_namespaces
from relayer.database.pool import Database
from relayer.database.vectors import VectorEntry, VectorStore

pytestmark = pytest.mark.database

ALICE = "0x" + "a" * 64
BOB = "0x" + "b" * 64
EMBEDDING = np.linspace(0.1, 1.0, 1536, dtype=np.float32)
TIE = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


async def _add(database: Database, owner: str, namespace: str, entry_id: str, size: int = 10) -> None:
    await VectorStore(database).upsert(VectorEntry(entry_id, owner, f"blob-{entry_id}", EMBEDDING, namespace, size))


async def _set_updated_at(database: Database, owner: str, namespace: str, moment: datetime) -> None:
    async with database.connection() as connection:
        await connection.execute(
            "UPDATE vector_entries SET updated_at = $3 WHERE owner = $1 AND namespace = $2", owner, namespace, moment
        )


async def _walk(database: Database, owner: str, limit: int) -> tuple[list[str], list]:
    names: list[str] = []
    pages = []
    cursor = None
    while True:
        page = await list_namespaces(database, owner, cursor, limit)
        pages.append(page)
        names += [summary.name for summary in page.namespaces]
        assert page.next_cursor  # set on every page, including the last
        cursor = page.next_cursor
        if not page.has_more:
            return names, pages


class TestListNamespaces:
    async def test_summaries_count_and_sum_per_namespace(self, database: Database) -> None:
        await _add(database, ALICE, "notes", "1", 100)
        await _add(database, ALICE, "notes", "2", 50)
        await _add(database, ALICE, "work", "3", 7)
        await _add(database, BOB, "notes", "4", 1_000)
        page = await list_namespaces(database, ALICE)
        by_name = {summary.name: summary for summary in page.namespaces}
        assert set(by_name) == {"notes", "work"}
        assert (by_name["notes"].memory_count, by_name["notes"].storage_used) == (2, 150)
        assert (by_name["work"].memory_count, by_name["work"].storage_used) == (1, 7)
        assert by_name["notes"].id != by_name["work"].id and len(by_name["notes"].id) == 32
        assert by_name["notes"].updated_at.endswith("Z")
        assert datetime.fromisoformat(by_name["notes"].updated_at)
        assert page.has_more is False and page.snapshot_version > 0
        json.dumps(page.to_json())  # serialisable as the SDK expects

    async def test_paging_with_ties_visits_every_namespace_once(self, database: Database) -> None:
        names = [f"ns-{index:02d}" for index in range(7)]
        for index, name in enumerate(names):
            await _add(database, ALICE, name, str(index))
        for name in names[:5]:  # five namespaces share one updated_at
            await _set_updated_at(database, ALICE, name, TIE)
        await _set_updated_at(database, ALICE, "ns-05", datetime(2026, 1, 1, tzinfo=UTC))
        await _set_updated_at(database, ALICE, "ns-06", datetime(2026, 5, 1, tzinfo=UTC))
        walked, pages = await _walk(database, ALICE, 2)
        assert walked == ["ns-05", "ns-00", "ns-01", "ns-02", "ns-03", "ns-04", "ns-06"]
        assert [len(page.namespaces) for page in pages] == [2, 2, 2, 1]
        assert [page.has_more for page in pages] == [True, True, True, False]

    async def test_exact_multiple_of_page_size_ends_cleanly(self, database: Database) -> None:
        for index in range(4):
            await _add(database, ALICE, f"ns-{index}", str(index))
        walked, pages = await _walk(database, ALICE, 2)
        assert sorted(walked) == [f"ns-{index}" for index in range(4)]
        assert pages[-1].has_more is False and len(pages[-1].namespaces) == 2

    async def test_last_cursor_resumes_with_only_changed_namespaces(self, database: Database) -> None:
        await _add(database, ALICE, "old", "1")
        await _add(database, ALICE, "other", "2")
        await _set_updated_at(database, ALICE, "old", datetime(2026, 1, 1, tzinfo=UTC))
        await _set_updated_at(database, ALICE, "other", datetime(2026, 1, 2, tzinfo=UTC))
        last = await list_namespaces(database, ALICE)
        assert (await list_namespaces(database, ALICE, last.next_cursor)).namespaces == ()
        await _add(database, ALICE, "old", "3")  # a new memory bumps the namespace's updated_at
        changed = await list_namespaces(database, ALICE, last.next_cursor)
        assert [summary.name for summary in changed.namespaces] == ["old"]
        assert changed.namespaces[0].memory_count == 2
        assert changed.snapshot_version > last.snapshot_version

    async def test_empty_owner_still_gets_a_cursor(self, database: Database) -> None:
        await _add(database, BOB, "notes", "1")
        page = await list_namespaces(database, ALICE)
        assert (page.namespaces, page.has_more, page.snapshot_version) == ((), False, 0)
        assert decode_cursor(page.next_cursor).name == ""

    async def test_limit_is_clamped_and_validated(self, database: Database) -> None:
        for index in range(3):
            await _add(database, ALICE, f"ns-{index}", str(index))
        assert len((await list_namespaces(database, ALICE, limit=10_000)).namespaces) == 3
        with pytest.raises(InvalidLimit, match="at least 1"):
            await list_namespaces(database, ALICE, limit=0)
        assert MAX_PAGE_SIZE == 500

    async def test_foreign_cursor_reveals_nothing(self, database: Database) -> None:
        await _add(database, BOB, "secret", "1")
        bob_page = await list_namespaces(database, BOB)
        alice_page = await list_namespaces(database, ALICE, bob_page.next_cursor)
        assert alice_page.namespaces == ()


class TestCursor:
    def test_round_trip_keeps_microseconds_and_unicode(self) -> None:
        position = CursorPosition(datetime(2026, 2, 3, 4, 5, 6, 789012, tzinfo=UTC), "日記/α")
        assert decode_cursor(encode_cursor(position)) == position

    @pytest.mark.parametrize(
        "cursor",
        [
            "not base64 !!",
            base64.urlsafe_b64encode(b"not json").decode(),
            base64.urlsafe_b64encode(b"[1, 2]").decode(),
            base64.urlsafe_b64encode(b'{"v": 2, "t": 1, "n": "x"}').decode(),
            base64.urlsafe_b64encode(b'{"v": 1, "t": "1", "n": "x"}').decode(),
            base64.urlsafe_b64encode(b'{"v": 1, "t": -5, "n": "x"}').decode(),
            base64.urlsafe_b64encode(b'{"v": 1, "t": 1, "n": 3}').decode(),
            base64.urlsafe_b64encode(b'{"v": 1, "t": 1, "n": "x", "extra": 1}').decode(),
            base64.urlsafe_b64encode(b'{"v": 1, "t": 99999999999999999999, "n": "x"}').decode(),
            base64.urlsafe_b64encode(b'{"v": 1, "t": 1, "n": "\\ud800"}').decode(),
            "",
        ],
    )
    def test_malformed_cursors_are_typed_errors(self, cursor: str) -> None:
        with pytest.raises(InvalidCursor, match="malformed cursor"):
            decode_cursor(cursor)

    async def test_malformed_cursor_fails_before_touching_the_database(self, database: Database) -> None:
        with pytest.raises(InvalidCursor, match="malformed cursor"):
            await list_namespaces(database, ALICE, "garbage!")
