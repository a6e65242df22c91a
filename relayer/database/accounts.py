"""``accounts`` and ``indexer_state``: what the indexer learned from AccountCreated events."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from relayer.database.pool import Database

EVENT_CURSOR_KEY = "event_cursor"


@dataclass(frozen=True)
class IndexedAccount:
    account_id: str
    owner: str


class AccountIndex:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, accounts: Iterable[IndexedAccount]) -> int:
        """Insert new accounts, skipping ones already known (ON CONFLICT DO NOTHING); returns how many were new."""
        batch = [(account.account_id, account.owner) for account in accounts]
        if not batch:
            return 0
        async with self._database.connection() as connection:
            inserted = await connection.fetchval(
                """
                WITH inserted AS (
                    INSERT INTO accounts (account_id, owner)
                    SELECT * FROM unnest($1::text[], $2::text[])
                    ON CONFLICT DO NOTHING
                    RETURNING 1
                )
                SELECT count(*) FROM inserted
                """,
                [account_id for account_id, _ in batch], [owner for _, owner in batch],
            )
        return int(inserted)

    async def by_owner(self, owner: str) -> IndexedAccount | None:
        async with self._database.connection() as connection:
            row = await connection.fetchrow("SELECT account_id, owner FROM accounts WHERE owner = $1", owner)
        return None if row is None else IndexedAccount(row["account_id"], row["owner"])

    async def event_cursor(self) -> dict[str, Any] | None:
        """The stored ``{txDigest, eventSeq}`` to resume the event query from, or None on first run."""
        async with self._database.connection() as connection:
            value = await connection.fetchval("SELECT value FROM indexer_state WHERE key = $1", EVENT_CURSOR_KEY)
        return None if value is None else json.loads(value)

    async def set_event_cursor(self, cursor: dict[str, Any]) -> None:
        async with self._database.connection() as connection:
            await connection.execute(
                "INSERT INTO indexer_state (key, value) VALUES ($1, $2)"
                " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                EVENT_CURSOR_KEY, json.dumps(cursor, separators=(",", ":")),
            )
