"""Upstream faults through the in-process relayer and sidecar with the real localnet: Seal key servers and Walrus
aggregators going away and coming back. Below the threshold of key servers a recall is a 503 with Retry-After;
with the threshold still reachable it is a 200; aggregators that fail or stall never cost an index row.

The key servers here are the test's own: real localnet key-server apps with fresh master keys, registered on
the localnet chain under the URL of a TCP relay this test starts and stops (a server that went away).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import pytest_asyncio

from chain.jsonrpc import JsonRpcChainReader
from localnet.cli import create_account
from localnet.runner import listening_socket, serving
from localnet.seal_policy import AccountView
from localnet.seal_server import build_seal_server_app
from sealcrypto import KeyServerSecret
from tests.relayer.in_process import open_relayer
from tests.relayer.test_routes import recall, remember

pytestmark = pytest.mark.database


class TcpRelay:
    """Forwards loopback connections to ``target`` while ``up``; refuses them while down."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):  # pooled keep-alive connections go down too
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._open.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        try:
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        finally:
            self._open.difference_update((writer, upstream_writer))


@pytest_asyncio.fixture(loop_scope="session")
async def relays(localnet) -> AsyncIterator[dict[str, Any]]:
    """Three key servers of our own, each behind a relay; on chain they are reached at the relay's URL."""
    relays: list[TcpRelay] = []
    servers = []
    package = localnet["memwal_package_id"]
    async with httpx.AsyncClient() as http, AsyncExitStack() as stack:
        chain = JsonRpcChainReader(localnet["sui_rpc_url"], http=http)

        async def lookup(account_id: str) -> AccountView | None:
            account = await chain.get_account(account_id)
            return None if account is None else AccountView.from_account(account)

        for index in range(3):
            secret = KeyServerSecret.generate()
            sock = listening_socket("127.0.0.1")
            relay = TcpRelay("127.0.0.1", sock.getsockname()[1])
            await relay.up()
            response = await http.post(f"{localnet['sui_rpc_url']}/_localnet/key-servers", json={
                "name": f"relayed-{index}", "url": f"http://127.0.0.1:{relay.port}", "public_key": secret.public_key.hex()})
            assert response.status_code == 200, response.text
            object_id = response.json()["objectId"]
            app = build_seal_server_app(secret, object_id, lookup, package_ids={package: package})
            await stack.enter_async_context(serving(app, name=f"relayed-seal-{index}", sock=sock))
            relays.append(relay)
            servers.append({"objectId": object_id, "url": f"http://127.0.0.1:{relay.port}", "weight": 1})
        yield {"relays": relays, "servers": servers}
        for relay in relays:
            await relay.down()


async def relayer_with_servers(localnet, stack: AsyncExitStack, database_url: str, redis_url: str, servers: list) -> Any:
    info = {**localnet, "seal_key_servers": servers, "seal_threshold": 2}
    return await open_relayer(info, stack, database_url=database_url, redis_url=redis_url)


class TestKeyServers:
    async def test_one_down_of_three_still_meets_the_threshold(self, localnet, relays, database_url, redis_url):
        # Three servers, one relay down: 2 of 3 answer, threshold 2 → 200.
        servers = relays["servers"]
        async with AsyncExitStack() as stack:
            relayer = await relayer_with_servers(localnet, stack, database_url, redis_url, servers)
            account = await create_account(localnet, label="one-down")
            await remember(relayer, account, "threshold still met")
            await relays["relays"][2].down()
            try:
                body = await recall(relayer, account, "threshold")
                assert [r["text"] for r in body["results"]] == ["threshold still met"]
            finally:
                await relays["relays"][2].up()

    async def test_too_many_down_is_503_then_recovers(self, localnet, relays, database_url, redis_url):
        servers = relays["servers"]
        async with AsyncExitStack() as stack:
            relayer = await relayer_with_servers(localnet, stack, database_url, redis_url, servers)
            account = await create_account(localnet, label="too-many-down")
            await remember(relayer, account, "needs two key servers")
            for relay in relays["relays"][1:]:
                await relay.down()
            try:
                response = await relayer.call(account, "POST", "/api/recall", {"query": "key servers", "namespace": "routes"},
                                              session=True)
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"].isdigit() and "Upstream temporarily unavailable" in response.json()["error"]
            finally:
                for relay in relays["relays"][1:]:
                    await relay.up()
            body = await recall(relayer, account, "key servers")  # back by itself: no restart, no cache to clear
            assert [r["text"] for r in body["results"]] == ["needs two key servers"]
            assert (await relayer.call(account, "POST", "/api/stats", {"namespace": "routes"})).json()["memory_count"] == 1


class TestAggregators:
    @pytest.mark.parametrize("fault", [{"unavailable": True}, {"delayMs": 20_000}], ids=["500", "slow"])
    async def test_every_aggregator_failing_drops_the_hit_and_keeps_the_row(self, relayer, faults, fault):
        account = await create_account(relayer.info, label="aggregators")
        await remember(relayer, account, "survives an aggregator outage")
        await faults(0, fault)
        await faults(1, fault)
        body = await recall(relayer, account, "aggregator outage")  # a 200: the answer says what it could not read
        assert (body["total"], body["dropped_count"]) == (0, 1)
        assert (await relayer.call(account, "POST", "/api/stats", {"namespace": "routes"})).json()["memory_count"] == 1

    async def test_one_aggregator_failing_is_invisible(self, relayer, faults):
        account = await create_account(relayer.info, label="one-aggregator")
        await remember(relayer, account, "read from the other aggregator")
        await faults(0, {"unavailable": True})
        body = await recall(relayer, account, "other aggregator")
        assert [r["text"] for r in body["results"]] == ["read from the other aggregator"] and "dropped_count" not in body
