"""The default configuration against a network without JSON-RPC, whose read side lags execution.

The localnet runs with ``--no-jsonrpc`` (GraphQL and gRPC only, as Sui Foundation full nodes since 2026)
and ``--indexing-lag-ms``: its GraphQL and gRPC reads trail execution. The relayer gets no SUI_PROTOCOL and no
SUI_RPC_URL, so relayer, sidecar and indexer run on their defaults. remember → done → recall (decrypted)
exercises the sidecar's read-after-write rules (versions and gas from effects, waiting for the read side)
across the lag. Requests are signed here (tests/e2e/signing.py): the official SDK reads the package over
JSON-RPC on a non-public network before its first call, which this network does not serve.
"""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
import pytest_asyncio
from memwal import MemWal, MemWalError

from localnet.cli import create_account
from tests.e2e.test_negative import Caller

pytestmark = [pytest.mark.e2e, pytest.mark.database, pytest.mark.asyncio(loop_scope="session")]

INDEXING_LAG_MS = 400
LOCALNET_ARGS = ("--no-jsonrpc", "--indexing-lag-ms", str(INDEXING_LAG_MS))
SUI_PROTOCOL = None  # the relayer's default


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def caller(stack):
    async with httpx.AsyncClient(timeout=30) as http:
        seen: list[httpx.Response] = []
        yield Caller(stack, stack.account, http, seen)
        assert all(response.status_code < 500 for response in seen), [(r.request.url, r.text) for r in seen]


async def test_the_network_serves_no_json_rpc_and_the_relayer_uses_its_defaults(stack):
    assert not stack.info.get("sui_rpc_url") and stack.info["indexing_lag_seconds"] == INDEXING_LAG_MS / 1000
    environment = stack.relayer_environment()
    assert "SUI_PROTOCOL" not in environment and not environment.get("SUI_RPC_URL")
    async with httpx.AsyncClient() as http:
        config = (await http.get(f"{stack.relayer_url}/config")).json()
        health = await http.get(f"{stack.relayer_url}/health")
    assert config["suiRpcUrl"] == ""  # nothing to advertise: SDKs send JSON-RPC there
    assert health.status_code == 200, health.text


async def test_remember_recall_across_the_indexing_lag(stack, caller):
    texts = [f"graphql-only memory {n}" for n in range(3)]
    jobs = [await caller.remember(text, "gql-only") for text in texts]  # back-to-back transactions
    for job in jobs:
        await caller.wait_done(job)
    connection = await asyncpg.connect(stack.database_url)
    try:
        attempts = await connection.fetch("SELECT attempts FROM remember_jobs WHERE id = ANY($1::text[])", jobs)
    finally:
        await connection.close()
    # Each on its first claim: a job retried after the lag passed would hide a missing read-after-write wait.
    assert [row["attempts"] for row in attempts] == [1, 1, 1]
    recalled = await caller.recall("graphql-only memory", "gql-only", limit=5)
    assert sorted(result["text"] for result in recalled["results"]) == texts


async def test_the_official_sdk_needs_json_rpc_on_a_non_public_network(stack):
    """memwal 0.2.1 checks the package version before its first call: on mainnet/testnet through
    graphql.<network>.sui.io, elsewhere only through /config's suiRpcUrl (JSON-RPC). A limitation of the SDK,
    pinned here so a release that lifts it is noticed; the relayer itself needs no JSON-RPC (tests above)."""
    client = MemWal.create(key=stack.account.delegate_private_key_hex, account_id=stack.account.account_id,
                           server_url=stack.relayer_url, namespace="gql-only-sdk")
    try:
        with pytest.raises(MemWalError, match="No Sui read endpoint available for network 'localnet'"):
            await client.remember("stored through the SDK")
    finally:
        await client.close()


async def test_the_indexer_reads_account_created_events_over_graphql(stack):
    later = await create_account(stack.info, label="later")
    connection = await asyncpg.connect(stack.database_url)
    try:
        for _ in range(100):
            row = await connection.fetchrow("SELECT owner FROM accounts WHERE account_id = $1", later.account_id)
            if row is not None:
                break
            await asyncio.sleep(0.1)
        assert row is not None and row["owner"] == later.owner_address
    finally:
        await connection.close()
