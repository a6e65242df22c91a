from __future__ import annotations

import pytest

from relayer.database.accounts import EVENT_CURSOR_KEY, AccountIndex, IndexedAccount
from relayer.database.errors import ConstraintViolation
from relayer.database.pool import Database

pytestmark = pytest.mark.database


class TestAccountIndex:
    async def test_insert_skips_known_accounts(self, database: Database) -> None:
        index = AccountIndex(database)
        first = [IndexedAccount("0xacc1", "0xowner1"), IndexedAccount("0xacc2", "0xowner2")]
        assert await index.insert(first) == 2
        assert await index.insert([*first, IndexedAccount("0xacc3", "0xowner3")]) == 1
        assert await index.insert([]) == 0
        assert await index.by_owner("0xowner3") == IndexedAccount("0xacc3", "0xowner3")
        assert await index.by_owner("0xnobody") is None

    async def test_duplicates_inside_one_batch_are_tolerated(self, database: Database) -> None:
        index = AccountIndex(database)
        account = IndexedAccount("0xacc1", "0xowner1")
        assert await index.insert([account, account]) == 1

    async def test_owner_is_unique_across_accounts(self, database: Database) -> None:
        index = AccountIndex(database)
        await index.insert([IndexedAccount("0xacc1", "0xowner1")])
        # ON CONFLICT DO NOTHING covers every unique constraint, as upstream's indexer relies on.
        assert await index.insert([IndexedAccount("0xacc9", "0xowner1")]) == 0
        async with database.connection() as connection:
            count = await connection.fetchval("SELECT count(*) FROM accounts")
        assert count == 1

    async def test_event_cursor_round_trip(self, database: Database) -> None:
        index = AccountIndex(database)
        assert await index.event_cursor() is None
        await index.set_event_cursor({"txDigest": "D1", "eventSeq": "0"})
        await index.set_event_cursor({"txDigest": "D2", "eventSeq": "3"})
        assert await index.event_cursor() == {"txDigest": "D2", "eventSeq": "3"}
        async with database.connection() as connection:
            keys = [row["key"] for row in await connection.fetch("SELECT key FROM indexer_state")]
        assert keys == [EVENT_CURSOR_KEY] == ["event_cursor"]

    async def test_null_owner_is_a_constraint_violation(self, database: Database) -> None:
        with pytest.raises(ConstraintViolation, match="null value"):
            await AccountIndex(database).insert([IndexedAccount("0xacc1", None)])  # type: ignore[arg-type]
