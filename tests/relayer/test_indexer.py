"""relayer.indexer on each backend: AccountCreated events into ``accounts``, resumable by cursor, and on gRPC
woken by the node's event subscription instead of waiting out POLL_INTERVAL_SECS."""

from __future__ import annotations

import asyncio
import time

import pytest
import pytest_asyncio

from chain.backends import make_chain_reader
from chain.reader import EventNotifier
from localnet.cli import create_account
from relayer.database.accounts import AccountIndex
from relayer.indexer import index_once, run

pytestmark = pytest.mark.database

PROTOCOLS = ["graphql", "grpc", "jsonrpc"]


@pytest_asyncio.fixture(loop_scope="session")
async def reader(localnet, http, request):
    protocol = request.param
    url = {"graphql": localnet["sui_graphql_url"], "grpc": localnet["sui_grpc_url"], "jsonrpc": localnet["sui_rpc_url"]}
    chain = make_chain_reader(url[protocol], protocol=protocol, http=http)
    yield chain
    await chain.aclose()


async def until_indexed(index: AccountIndex, owner: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await index.by_owner(owner) is not None:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"{owner} not indexed within {timeout} s")


@pytest.mark.parametrize("reader", PROTOCOLS, indirect=True)
async def test_index_once_pages_to_the_tip_and_resumes(localnet, reader, database):
    index = AccountIndex(database)
    account = await create_account(localnet, label="indexer")
    while (await index_once(reader, index, localnet["memwal_package_id"]))[1]:
        pass
    assert (await index.by_owner(account.owner_address)).account_id == account.account_id
    cursor = await index.event_cursor()
    assert cursor is not None
    later = await create_account(localnet, label="indexer-later")
    assert await index_once(reader, index, localnet["memwal_package_id"]) == (1, False)  # only the new one
    assert (await index.by_owner(later.owner_address)).account_id == later.account_id


@pytest.mark.parametrize("reader", PROTOCOLS, indirect=True)
async def test_a_new_account_is_indexed_promptly_only_where_the_node_streams_events(localnet, reader, database):
    index, shutdown = AccountIndex(database), asyncio.Event()
    task = asyncio.create_task(run(reader, index, localnet["memwal_package_id"], 30.0, shutdown))
    try:
        first = await create_account(localnet, label="before")
        await until_indexed(index, first.owner_address, 5)  # the first pass
        await asyncio.sleep(0.3)  # the runner is now waiting out its 30 s poll interval (and subscribed, on gRPC)
        account = await create_account(localnet, label="woken")
        if isinstance(reader, EventNotifier):  # gRPC
            assert await until_indexed(index, account.owner_address, 5) < 5
        else:
            with pytest.raises(AssertionError, match="not indexed"):
                await until_indexed(index, account.owner_address, 1)
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 5)
