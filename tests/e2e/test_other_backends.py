"""The official SDK's core flow with relayer, sidecar and indexer reading Sui through gRPC, then JSON-RPC.

The full e2e suite runs on the default backend (GraphQL); here each other backend gets one stack and the
smaller flow: remember → wait → recall (decrypted) → restore after the index is wiped, and the indexer
picking up the account's AccountCreated event.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import pytest_asyncio
from memwal import MemWal
from memwal.types import RecallParams

from tests.e2e.conftest import open_stack

pytestmark = [pytest.mark.e2e, pytest.mark.interop, pytest.mark.database, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["grpc", "jsonrpc"])
async def stack(tmp_path_factory, request):
    async with open_stack(tmp_path_factory, sui_protocol=request.param) as running:
        yield running


async def test_remember_recall_restore_and_index(stack):
    protocol = stack.sui_protocol
    assert stack.relayer_environment()["SUI_PROTOCOL"] == protocol
    client = MemWal.create(
        key=stack.account.delegate_private_key_hex, account_id=stack.account.account_id,
        server_url=stack.relayer_url, namespace=protocol,
    )
    text = f"{protocol} backend memory"
    try:
        done = await client.remember_and_wait(text, poll_interval_ms=200, timeout_ms=30_000)
        recalled = await client.recall(RecallParams(query=text, limit=3))
        assert [m.text for m in recalled.results] == [text]
        connection = await asyncpg.connect(stack.database_url)
        try:
            await connection.execute("DELETE FROM vector_entries WHERE namespace = $1", protocol)
            restored = await client.restore(protocol, limit=5)
            assert (restored.restored, restored.total) == (1, 1)
            # The indexer (on the same backend) picked up the AccountCreated event.
            for _ in range(50):
                row = await connection.fetchrow("SELECT owner FROM accounts WHERE account_id = $1", stack.account.account_id)
                if row is not None:
                    break
                await asyncio.sleep(0.2)
            assert row is not None and row["owner"] == stack.account.owner_address
        finally:
            await connection.close()
        assert done.blob_id == (await client.recall(RecallParams(query=text, limit=1))).results[0].blob_id
    finally:
        await client.close()
