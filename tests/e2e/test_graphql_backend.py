"""The same SDK flow with the relayer, sidecar and indexer reading Sui through GraphQL instead of JSON-RPC."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from memwal import MemWal
from memwal.types import RecallParams

pytestmark = [pytest.mark.e2e, pytest.mark.interop, pytest.mark.database, pytest.mark.asyncio(loop_scope="session")]

SUI_PROTOCOL = "graphql"


async def test_remember_recall_restore_over_graphql(stack):
    assert stack.relayer_environment()["SUI_PROTOCOL"] == "graphql"
    client = MemWal.create(
        key=stack.account.delegate_private_key_hex, account_id=stack.account.account_id,
        server_url=stack.relayer_url, namespace="graphql",
    )
    try:
        done = await client.remember_and_wait("GraphQL backend memory", poll_interval_ms=200, timeout_ms=30_000)
        recalled = await client.recall(RecallParams(query="GraphQL backend memory", limit=3))
        assert [m.text for m in recalled.results] == ["GraphQL backend memory"]
        connection = await asyncpg.connect(stack.database_url)
        try:
            await connection.execute("DELETE FROM vector_entries WHERE namespace = 'graphql'")
            restored = await client.restore("graphql", limit=5)
            assert (restored.restored, restored.total) == (1, 1)
            # The indexer (also on GraphQL) picked up the AccountCreated event.
            for _ in range(50):
                row = await connection.fetchrow("SELECT owner FROM accounts WHERE account_id = $1", stack.account.account_id)
                if row is not None:
                    break
                await asyncio.sleep(0.2)
            assert row is not None and row["owner"] == stack.account.owner_address
        finally:
            await connection.close()
        assert done.blob_id == (await client.recall(RecallParams(query="GraphQL backend memory", limit=1))).results[0].blob_id
    finally:
        await client.close()
