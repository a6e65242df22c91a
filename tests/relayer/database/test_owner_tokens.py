from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from relayer.database.owner_tokens import TOKEN_PREFIX, OwnerTokenStore
from relayer.database.pool import Database
from tests.relayer.database.conftest import Clock

pytestmark = pytest.mark.database

ALICE = "0x" + "a" * 64
ACCOUNT = "0x" + "1" * 64


@pytest.fixture
def store(database: Database, clock: Clock) -> OwnerTokenStore:
    return OwnerTokenStore(database, clock=clock)


class TestOwnerTokenStore:
    async def test_a_token_is_valid_until_it_expires(self, store: OwnerTokenStore, clock: Clock) -> None:
        issued = await store.issue(ALICE, ACCOUNT, ["memories.read"], timedelta(minutes=15))
        assert issued.token.startswith(TOKEN_PREFIX) and len(issued.token) == len(TOKEN_PREFIX) + 43
        grant = await store.grant(issued.token)
        assert grant is not None and (grant.owner, grant.account_id, grant.permissions) == (ALICE, ACCOUNT, ("memories.read",))
        clock.now += timedelta(minutes=15)
        assert await store.grant(issued.token) is None
        assert not await store.revoke(issued.token)  # nothing live to revoke

    async def test_revoked_unknown_and_foreign_looking_tokens_grant_nothing(self, store: OwnerTokenStore) -> None:
        issued = await store.issue(ALICE, ACCOUNT, ["memories.read"], timedelta(minutes=15))
        assert await store.revoke(issued.token)
        assert await store.grant(issued.token) is None
        assert await store.grant(TOKEN_PREFIX + "x" * 43) is None
        assert await store.grant(issued.token[len(TOKEN_PREFIX):]) is None  # the prefix is part of the token
        assert await store.grant(TOKEN_PREFIX + "x" * 500) is None

    async def test_only_the_digest_is_stored_and_old_rows_are_pruned(
        self, store: OwnerTokenStore, clock: Clock, database: Database
    ) -> None:
        old = await store.issue(ALICE, ACCOUNT, ["memories.read"], timedelta(minutes=1))
        clock.now += timedelta(days=2)
        fresh = await store.issue(ALICE, ACCOUNT, ["memories.read"], timedelta(minutes=1))
        async with database.connection() as connection:
            rows = await connection.fetch("SELECT id, token_hash FROM owner_tokens")
        assert [(row["id"], bytes(row["token_hash"])) for row in rows] == [
            (fresh.token_id, hashlib.sha256(fresh.token.encode()).digest())
        ]
        assert old.token_id != fresh.token_id
