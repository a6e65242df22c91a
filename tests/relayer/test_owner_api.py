"""The owner read API, owner tokens and the account check through the real relayer app (PostgreSQL, Redis,
localnet, the in-process sidecar)."""

from __future__ import annotations

import hashlib
import logging
from contextlib import AsyncExitStack

import asyncpg
import pytest
import pytest_asyncio

from localnet.cli import create_account
from relayer.database.accounts import AccountIndex, IndexedAccount
from tests.relayer.in_process import open_relayer
from tests.relayer.test_routes import remember

pytestmark = pytest.mark.database

CREDENTIAL = "test-service-credential-" + "x" * 20
READS_PER_KEY = 12  # OWNER_READ_RATE_LIMIT_KEY_PER_MINUTE below


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def relayer(localnet, database_url, redis_url):
    env = {"OWNER_TOKEN_SERVICE_CREDENTIAL": CREDENTIAL, "OWNER_READ_RATE_LIMIT_KEY_PER_MINUTE": str(READS_PER_KEY)}
    async with AsyncExitStack() as stack:
        yield await open_relayer(localnet, stack, database_url=database_url, redis_url=redis_url, env=env)


async def indexed_account(relayer, label: str):
    """A new localnet account, written to ``accounts`` as the indexer writes it (the indexer's own paging is
    tests/relayer/test_indexer.py's; its cursor here may belong to another test's chain)."""
    account = await create_account(relayer.info, label=label)
    accounts: AccountIndex = relayer.services.token_issuance.accounts
    assert await accounts.insert([IndexedAccount(account.account_id, account.owner_address)]) == 1
    return account


async def issue(relayer, owner: str, credential: str = CREDENTIAL, **extra):
    return await relayer.client.post("/v1/owner-tokens", json={"owner": owner, **extra},
                                      headers={"x-service-credential": credential})


async def bearer_get(relayer, token: str, path: str):
    return await relayer.client.get(path, headers={"authorization": f"Bearer {token}"})


class TestAccountExists:
    async def test_exists_for_an_indexed_account_only(self, relayer):
        account = await indexed_account(relayer, "exists")
        found = await relayer.client.get(f"/api/accounts/{account.owner_address.upper().replace('0X', '0x')}/exists")
        assert (found.status_code, found.json()) == (200, {"exists": True})
        missing = await relayer.client.get(f"/api/accounts/0x{'de' * 32}/exists")
        assert (missing.status_code, missing.json()) == (200, {"exists": False})

    @pytest.mark.parametrize("owner", ["0x1", "abc", "0x" + "g" * 64, "0x" + "a" * 65])
    async def test_a_malformed_address_is_400(self, relayer, owner):
        response = await relayer.client.get(f"/api/accounts/{owner}/exists")
        assert response.status_code == 400 and "66 characters" in response.json()["error"]


class TestOwnerTokens:
    async def test_issue_use_and_revoke(self, relayer, database_url, caplog):
        caplog.set_level(logging.DEBUG)
        account = await indexed_account(relayer, "token")
        await remember(relayer, account, "listed by a console", "console")
        issued = await issue(relayer, account.owner_address)
        assert issued.status_code == 200, issued.text
        body = issued.json()
        assert set(body) == {"token", "expires_at", "permissions"} and body["permissions"] == ["memories.read"]
        assert body["expires_at"].endswith("Z") and body["token"].startswith("mwot_")
        token = body["token"]
        memories = await bearer_get(relayer, token, f"/v1/owners/{account.owner_address}/memories")
        assert memories.status_code == 200, memories.text
        [memory] = memories.json()["memories"]
        assert memory["namespace_id"] == "console" and memory["agent_id"] == account.delegate_public_key_hex
        assert memory["status"] == "active" and memory["end_epoch"] is None and memories.json()["next_cursor"] is None
        namespaces = await bearer_get(relayer, token, f"/v1/owners/{account.owner_address}/namespaces")
        assert [n["name"] for n in namespaces.json()["namespaces"]] == ["console"]
        agents = await bearer_get(relayer, token, f"/v1/owners/{account.owner_address}/agents")
        assert agents.json()["agents"] == [{"label": "token", "sui_address": account.delegate_address}]
        # Only the digest is stored.
        connection = await asyncpg.connect(database_url)
        try:
            rows = [dict(row) for row in await connection.fetch("SELECT * FROM owner_tokens WHERE owner = $1", account.owner_address)]
        finally:
            await connection.close()
        assert [bytes(row["token_hash"]) for row in rows] == [hashlib.sha256(token.encode()).digest()]
        assert token not in repr(rows)
        revoked = await relayer.client.post("/v1/owner-tokens/revoke", json={"token": token},
                                            headers={"x-service-credential": CREDENTIAL})
        assert revoked.json() == {"revoked": True}
        after = await bearer_get(relayer, token, f"/v1/owners/{account.owner_address}/memories")
        assert (after.status_code, after.content) == (401, b"")
        again = await relayer.client.post("/v1/owner-tokens/revoke", json={"token": token},
                                          headers={"x-service-credential": CREDENTIAL})
        assert again.json() == {"revoked": False}
        assert caplog.records and token not in caplog.text and CREDENTIAL not in caplog.text  # never logged

    async def test_a_token_reads_only_its_owner(self, relayer):
        alice = await indexed_account(relayer, "token-a")
        bob = await indexed_account(relayer, "token-b")
        token = (await issue(relayer, alice.owner_address)).json()["token"]
        response = await bearer_get(relayer, token, f"/v1/owners/{bob.owner_address}/memories")
        assert (response.status_code, response.json()) == (403, {"error": "owner mismatch"})

    @pytest.mark.parametrize("authorization", ["Bearer mwot_unknown", "Bearer ", "Basic abc", "Bearer " + "a" * 500])
    async def test_a_bad_bearer_is_an_empty_401(self, relayer, authorization):
        response = await relayer.client.get(f"/v1/owners/0x{'ab' * 32}/memories", headers={"authorization": authorization})
        assert (response.status_code, response.content) == (401, b"")

    @pytest.mark.parametrize("credential", ["", "wrong", CREDENTIAL + "x"])
    async def test_issuance_without_the_service_credential_is_an_empty_401(self, relayer, credential):
        response = await issue(relayer, "0x" + "ab" * 32, credential)
        assert (response.status_code, response.content) == (401, b"")

    async def test_issuance_refuses_bad_addresses_and_owners_without_an_account(self, relayer):
        bad = await issue(relayer, "0x12")
        assert bad.status_code == 400 and "66 characters" in bad.json()["error"]
        unknown = await issue(relayer, "0x" + "ef" * 32)
        assert (unknown.status_code, unknown.json()) == (400, {"error": "owner has no MemWalAccount"})
        missing = await relayer.client.post("/v1/owner-tokens", json={}, headers={"x-service-credential": CREDENTIAL})
        assert missing.status_code == 422

    async def test_a_shorter_ttl_can_be_asked_for(self, relayer):
        account = await indexed_account(relayer, "token-ttl")
        short = (await issue(relayer, account.owner_address, ttl_seconds=60)).json()
        default = (await issue(relayer, account.owner_address)).json()
        assert short["expires_at"] < default["expires_at"]

    async def test_issuance_has_a_per_owner_budget(self, relayer):
        account = await indexed_account(relayer, "token-budget")
        statuses = [(await issue(relayer, account.owner_address)).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]  # OWNER_TOKEN_RATE_LIMIT_OWNER_PER_MINUTE=5


class TestSignedReads:
    async def test_memories_pages_with_a_signature(self, relayer):
        account = await create_account(relayer.info, label="signed-reads")
        for i in range(3):
            await remember(relayer, account, f"signed read {i}", "paged")
        first = await relayer.call(account, "GET", f"/v1/owners/{account.owner_address}/memories?limit=2")
        assert first.status_code == 200, first.text
        cursor = first.json()["next_cursor"]
        assert cursor and first.json()["has_more"] and len(first.json()["memories"]) == 2
        second = await relayer.call(account, "GET", f"/v1/owners/{account.owner_address}/memories?limit=2&updated_after={cursor}")
        assert second.json()["next_cursor"] is None and len(second.json()["memories"]) == 1
        assert second.json()["snapshot_version"] == first.json()["snapshot_version"]
        ids = [m["memory_id"] for m in first.json()["memories"] + second.json()["memories"]]
        assert len(set(ids)) == 3

    async def test_another_owner_and_bad_queries(self, relayer):
        account = await create_account(relayer.info, label="signed-bad")
        other = await relayer.call(account, "GET", f"/v1/owners/0x{'12' * 32}/agents")
        assert (other.status_code, other.json()) == (403, {"error": "owner mismatch"})
        cursor = await relayer.call(account, "GET", f"/v1/owners/{account.owner_address}/memories?updated_after=nope")
        assert cursor.status_code == 400
        limit = await relayer.call(account, "GET", f"/v1/owners/{account.owner_address}/memories?limit=0")
        assert limit.status_code == 400

    async def test_reads_have_a_budget_of_their_own(self, relayer):
        account = await create_account(relayer.info, label="read-budget")
        path = f"/v1/owners/{account.owner_address}/agents"
        statuses = [(await relayer.call(account, "GET", path)).status_code for _ in range(READS_PER_KEY + 1)]
        assert statuses == [200] * READS_PER_KEY + [429]
        # The write budget is untouched by the reads, and writes leave the read budget alone.
        assert (await relayer.call(account, "POST", "/api/stats", {"namespace": "x"})).status_code == 200
        other = await create_account(relayer.info, label="read-budget-2")
        for _ in range(5):
            assert (await relayer.call(other, "POST", "/api/stats", {"namespace": "x"})).status_code == 200
        assert (await relayer.call(other, "GET", f"/v1/owners/{other.owner_address}/agents")).status_code == 200
