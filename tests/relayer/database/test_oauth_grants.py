from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest

from relayer.database.oauth_grants import ACCESS_PREFIX, CODE_PREFIX, Grantee, OAuthGrantStore, PendingAuthorization
from relayer.database.pool import Database
from tests.relayer.database.conftest import Clock

pytestmark = pytest.mark.database

GRANTEE = Grantee("0x" + "a" * 64, "0x" + "1" * 64, "ab" * 32)
HOUR, MONTH = timedelta(hours=1), timedelta(days=30)


@pytest.fixture
async def store(database: Database, clock: Clock) -> OAuthGrantStore:
    store = OAuthGrantStore(database, clock=clock)
    await store.register_client("client-1", {"client_id": "client-1", "redirect_uris": ["http://127.0.0.1:9/cb"]})
    return store


async def approved_code(store: OAuthGrantStore, clock: Clock, request_id: str = "request-1") -> str:
    await store.open_authorization(PendingAuthorization(
        request_id, "client-1", ("memories.read",), "challenge", "http://127.0.0.1:9/cb", True, "state", None,
        clock.now + timedelta(minutes=10),
    ))
    approved = await store.approve(request_id, GRANTEE)
    assert approved is not None
    return approved[1]


class TestOAuthGrantStore:
    async def test_a_request_is_approved_once_and_its_code_redeemed_once(self, store: OAuthGrantStore, clock: Clock) -> None:
        code = await approved_code(store, clock)
        assert code.startswith(CODE_PREFIX)
        assert await store.pending("request-1") is None  # approved: no longer pending
        assert await store.approve("request-1", GRANTEE) is None
        found = await store.code("client-1", code)
        assert found is not None and found.grantee == GRANTEE and found.authorization.scopes == ("memories.read",)
        assert await store.code("another-client", code) is None
        first, second = await asyncio.gather(store.redeem(code, HOUR, MONTH), store.redeem(code, HOUR, MONTH))
        assert [outcome is None for outcome in (first, second)].count(True) == 1  # concurrent redeems: one wins
        assert await store.code("client-1", code) is None

    async def test_only_digests_are_stored(self, store: OAuthGrantStore, clock: Clock, database: Database) -> None:
        redeemed = await store.redeem(await approved_code(store, clock), HOUR, MONTH)
        assert redeemed is not None
        pair, _ = redeemed
        async with database.connection() as connection:
            stored = {bytes(row["token_hash"]) for row in await connection.fetch("SELECT token_hash FROM oauth_tokens")}
            dumped = str(await connection.fetch("SELECT * FROM oauth_tokens")) + str(await connection.fetch("SELECT * FROM oauth_authorizations"))
        assert stored == {hashlib.sha256(token.encode()).digest() for token in (pair.access_token, pair.refresh_token)}
        assert pair.access_token not in dumped and pair.refresh_token not in dumped

    async def test_tokens_expire(self, store: OAuthGrantStore, clock: Clock) -> None:
        redeemed = await store.redeem(await approved_code(store, clock), HOUR, MONTH)
        assert redeemed is not None
        pair, grant = redeemed
        assert pair.access_token.startswith(ACCESS_PREFIX)
        live = await store.token(pair.access_token, "access")
        assert live is not None and live.grantee == GRANTEE and live.grant_id == grant.grant_id
        assert await store.token(pair.access_token, "refresh") is None  # the kinds do not mix
        clock.now += HOUR + timedelta(seconds=1)
        assert await store.token(pair.access_token, "access") is None
        assert await store.token(pair.refresh_token, "refresh") is not None

    async def test_a_refresh_rotates_the_pair_and_is_spent(self, store: OAuthGrantStore, clock: Clock) -> None:
        redeemed = await store.redeem(await approved_code(store, clock), HOUR, MONTH)
        assert redeemed is not None
        old, _ = redeemed
        new = await store.rotate(old.refresh_token, ["memories.read"], HOUR, MONTH)
        assert new is not None
        assert await store.token(old.access_token, "access") is None
        assert await store.rotate(old.refresh_token, ["memories.read"], HOUR, MONTH) is None  # spent
        assert await store.token(new.access_token, "access") is not None

    async def test_revoking_one_token_revokes_the_grant(self, store: OAuthGrantStore, clock: Clock) -> None:
        redeemed = await store.redeem(await approved_code(store, clock), HOUR, MONTH)
        assert redeemed is not None
        pair, _ = redeemed
        assert await store.revoke(pair.refresh_token)
        assert await store.token(pair.access_token, "access") is None
        assert await store.token(pair.refresh_token, "refresh") is None
        assert not await store.revoke("mwoa_unknown")

    async def test_an_unapproved_request_expires(self, store: OAuthGrantStore, clock: Clock) -> None:
        await store.open_authorization(PendingAuthorization(
            "request-2", "client-1", ("memories.read",), "challenge", "http://127.0.0.1:9/cb", True, None, None,
            clock.now + timedelta(minutes=10),
        ))
        assert await store.pending("request-2") is not None
        clock.now += timedelta(minutes=11)
        assert await store.pending("request-2") is None
        assert await store.approve("request-2", GRANTEE) is None

    async def test_old_clients_without_a_live_token_are_pruned(self, store: OAuthGrantStore, clock: Clock) -> None:
        redeemed = await store.redeem(await approved_code(store, clock), HOUR, MONTH)  # client-1 holds a grant
        assert redeemed is not None
        await store.register_client("client-idle", {"client_id": "client-idle"})
        clock.now += timedelta(days=2)
        await store.register_client("client-new", {"client_id": "client-new"})
        assert await store.client("client-idle") is None
        assert await store.client("client-1") is not None and await store.client("client-new") is not None
