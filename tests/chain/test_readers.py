"""All three ChainReader backends against the localnet Sui servers, over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket

import httpx
import nacl.signing
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from chain.address import sui_address
from chain.backends import make_chain_reader
from chain.errors import ObjectNotFound, TransactionRejected
from chain.reader import ChainReader, EventCursor, blob_id_from_u256
from chain.transactions import BlobTags, build_blob_metadata_transaction
from localnet.sui_graphql import build_sui_graphql_app
from localnet.sui_grpc import build_sui_grpc_server
from localnet.sui_jsonrpc import build_sui_jsonrpc_app
from localnet.world import World

BLOB_ID = "M4hsZGQ1oCktdzegB6HnI6Mi28S2nqOPHxK-W7_4BUk"
WALLET_SEED = bytes(range(1, 33))
WALLET = sui_address(bytes(nacl.signing.SigningKey(WALLET_SEED).verify_key))
USER = "0x" + "ab" * 32


class _CapturingConfig(Config):
    """Keeps the sockets hypercorn binds, so a test can learn the port picked for port 0."""

    bound = None

    def create_sockets(self):  # type: ignore[no-untyped-def]
        self.bound = super().create_sockets()
        return self.bound


@contextlib.asynccontextmanager
async def running(app):
    config = _CapturingConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    for _ in range(500):
        if config.bound is not None:
            break
        await asyncio.sleep(0.01)
    port = config.bound.insecure_sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def running_grpc(world: World):
    server = build_sui_grpc_server(world)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    await server.start(sock=sock)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def reader_for(world: World, protocol: str):
    if protocol == "grpc":
        async with running_grpc(world) as url, httpx.AsyncClient() as http:
            reader = make_chain_reader(url, protocol=protocol, http=http)
            try:
                yield reader
            finally:
                await reader.aclose()
        return
    app = build_sui_jsonrpc_app(world) if protocol == "jsonrpc" else build_sui_graphql_app(world)
    async with running(app) as base_url, httpx.AsyncClient() as http:
        url = base_url + ("/" if protocol == "jsonrpc" else "/graphql")
        yield make_chain_reader(url, protocol=protocol, http=http)


@pytest.fixture
def world(tmp_path) -> World:
    world = World(tmp_path / "sui.json")
    world.publish_memwal_package()
    world.publish_walrus_package()
    world.create_registry()
    return world


BACKENDS = pytest.mark.parametrize("protocol", ["graphql", "grpc", "jsonrpc"])


async def _tag_and_transfer(reader: ChainReader, world: World, blob_object_id: str, *, seed: bytes = WALLET_SEED,
                            stale: bool = False) -> str:
    blob = await reader.object_ref(blob_object_id)
    if stale:
        blob = dataclasses.replace(blob, version=blob.version - 1)
    tx_bytes, signature = build_blob_metadata_transaction(
        seed=seed, walrus_package_id=world.packages["walrus"], blobs=[blob],
        tags=BlobTags(owner=USER, namespace="notes", memwal_package_id=world.packages["memwal"], agent_id="agent-1"),
        gas_coins=await reader.gas_coins(WALLET), gas_price=await reader.gas_price(), gas_budget=50_000_000,
    )
    return (await reader.execute_transaction(tx_bytes, [signature])).digest


class TestAccounts:
    @BACKENDS
    async def test_active_account_with_delegates(self, world, protocol):
        account_id = world.create_account(USER)
        keys = [bytes(nacl.signing.SigningKey(bytes([n]) * 32).verify_key) for n in (1, 2)]
        for number, key in enumerate(keys):
            world.add_delegate_key(account_id, key, f"device-{number}")
        async with reader_for(world, protocol) as reader:
            account = await reader.get_account(account_id)
        assert account is not None and account.active and account.owner == USER
        assert [key.public_key for key in account.delegate_keys] == keys
        assert account.delegate_keys[1].sui_address == sui_address(keys[1])
        assert account.delegate_keys[0].label == "device-0"
        shared = world.get(account_id).owner["Shared"]["initial_shared_version"]
        assert account.initial_shared_version == shared

    @BACKENDS
    async def test_inactive_account_is_reported_inactive(self, world, protocol):
        account_id = world.create_account(USER)
        world.set_active(account_id, False)
        async with reader_for(world, protocol) as reader:
            account = await reader.get_account(account_id)
        assert account is not None and account.active is False

    @BACKENDS
    async def test_missing_and_non_account_objects_are_none(self, world, protocol):
        blob = world.create_blob_object(BLOB_ID, 17, USER)
        async with reader_for(world, protocol) as reader:
            assert await reader.get_account("0x" + "77" * 32) is None
            assert await reader.get_account(blob) is None
            assert await reader.object_version("0x" + "77" * 32) is None
            with pytest.raises(ObjectNotFound, match="does not exist"):
                await reader.object_ref("0x" + "77" * 32)

    @BACKENDS
    async def test_registry_scan_pages_past_fifty(self, world, protocol):
        created = {world.create_account("0x" + f"{n:064x}") for n in range(1, 62)}
        async with reader_for(world, protocol) as reader:
            scanned = [account async for account in reader.iter_registry_accounts(world.registry_id)]
        assert len(scanned) == 61 and set(scanned) == created


class TestEvents:
    @BACKENDS
    async def test_paging_with_cursors_returns_every_event_once(self, world, protocol):
        owners = ["0x" + f"{n:064x}" for n in range(1, 56)]
        for owner in owners:
            world.create_account(owner)
        package = world.packages["memwal"]
        seen, cursor = [], None
        async with reader_for(world, protocol) as reader:
            for _ in range(10):
                page = await reader.account_created_events(package, cursor, 20)
                seen.extend(event.owner for event in page.events)
                cursor = page.next_cursor
                if not page.has_next_page:
                    break
            assert seen == owners
            empty = await reader.account_created_events(package, cursor, 20)
            assert empty.events == () and empty.next_cursor == cursor and not empty.has_next_page
            world.create_account("0x" + "99" * 32)
            stored = EventCursor.from_json(EventCursor(cursor.tx_digest, cursor.event_seq).to_json())
            resumed = await reader.account_created_events(package, stored, 20)  # a cursor without the GraphQL part
            assert [event.owner for event in resumed.events] == ["0x" + "99" * 32]


class TestTransactions:
    @BACKENDS
    async def test_metadata_and_transfer_then_owned_blobs(self, world, protocol):
        world.fund(WALLET, 10**9)
        first = world.create_blob_object(BLOB_ID, 17, WALLET)
        async with reader_for(world, protocol) as reader:
            digest = await _tag_and_transfer(reader, world, first)
            blobs = await reader.owned_blobs(USER, world.packages["walrus"])
            assert await reader.owned_blobs(WALLET, world.packages["walrus"]) == []
        assert world.transactions[-1].digest == digest
        assert [blob.object_id for blob in blobs] == [first]
        assert blobs[0].blob_id == BLOB_ID
        assert dict(blobs[0].metadata) == {
            "memwal_namespace": "notes", "memwal_owner": USER,
            "memwal_package_id": world.packages["memwal"], "memwal_agent_id": "agent-1",
        }
        transferred = [c for c in world.transactions[-1].object_changes if c["type"] == "transferred"]
        assert transferred[0]["recipient"] == {"AddressOwner": USER}

    @BACKENDS
    async def test_wrong_signer_is_rejected(self, world, protocol):
        world.fund(WALLET, 10**9)
        blob = world.create_blob_object(BLOB_ID, 17, WALLET)
        async with reader_for(world, protocol) as reader:
            with pytest.raises(TransactionRejected, match="(?i)signature"):
                await _tag_and_transfer(reader, world, blob, seed=bytes(32))
        assert world.get(blob).owner == {"AddressOwner": WALLET}

    @BACKENDS
    async def test_stale_object_version_is_rejected(self, world, protocol):
        world.fund(WALLET, 10**9)
        blob = world.create_blob_object(BLOB_ID, 17, WALLET)
        async with reader_for(world, protocol) as reader:
            with pytest.raises(TransactionRejected, match="version"):
                await _tag_and_transfer(reader, world, blob, stale=True)
        assert world.get(blob).owner == {"AddressOwner": WALLET}


class TestChainInfo:
    @BACKENDS
    async def test_key_server_gas_price_and_versions(self, world, protocol):
        public_key = bytes(range(96))
        server = world.register_key_server("server-a", "http://127.0.0.1:1", public_key)
        async with reader_for(world, protocol) as reader:
            info = await reader.key_server(server)
            assert (info.url, info.public_key, info.key_type, info.name) == ("http://127.0.0.1:1", public_key, 0, "server-a")
            assert info.record_version == 1
            assert await reader.gas_price() == world.reference_gas_price
            assert await reader.object_version(world.packages["memwal"]) == 1
            with pytest.raises(ObjectNotFound):
                await reader.key_server("0x" + "42" * 32)


class TestPersistence:
    @BACKENDS
    async def test_restarted_world_keeps_accounts_and_blobs(self, world, protocol, tmp_path):
        account_id = world.create_account(USER)
        world.fund(WALLET, 10**9)
        blob = world.create_blob_object(BLOB_ID, 17, WALLET)
        async with reader_for(world, protocol) as reader:
            await _tag_and_transfer(reader, world, blob)
        reloaded = World(tmp_path / "sui.json")
        async with reader_for(reloaded, protocol) as reader:
            account = await reader.get_account(account_id)
            blobs = await reader.owned_blobs(USER, reloaded.packages["walrus"])
        assert account is not None and account.owner == USER
        assert [item.blob_id for item in blobs] == [BLOB_ID] and blobs[0].metadata["memwal_namespace"] == "notes"


class TestBlobIds:
    def test_u256_round_trip_matches_walrus_text_form(self):
        from chain.reader import blob_id_to_u256

        assert blob_id_from_u256(blob_id_to_u256(BLOB_ID)) == BLOB_ID

    def test_out_of_range_is_rejected(self):
        with pytest.raises(ValueError, match="u256"):
            blob_id_from_u256(1 << 256)
