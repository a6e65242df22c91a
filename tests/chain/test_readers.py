"""All three ChainReader backends against the localnet Sui servers, over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import httpx
import nacl.signing
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from chain import bcs
from chain.address import sui_address
from chain.backends import make_chain_reader
from chain.errors import ObjectNotFound, TransactionRejected
from chain.programmable_transaction import Argument, GasData, ProgrammableTransactionBuilder, TransactionData
from chain.reader import ChainReader, CommitteeServer, EventCursor, EventNotifier, ObjectRef, blob_id_from_u256
from chain.transactions import BlobTags, build_blob_metadata_transaction, build_gas_split_transaction, sign_transaction
from localnet.execution import TransactionError
from localnet.object_store import CHAIN_IDENTIFIER, MoveAbort
from localnet.runner import listening_socket, serving_grpc
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
    async with serving_grpc(build_sui_grpc_server(world), name="sui-grpc", sock=listening_socket("127.0.0.1")) as url:
        yield url


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


    @BACKENDS
    async def test_account_change_events_name_the_account_and_resume_from_a_stored_cursor(self, world, protocol):
        keys = [bytes(nacl.signing.SigningKey(bytes([n]) * 32).verify_key) for n in (1, 2)]
        first, second = world.create_account("0x" + "a1" * 32), world.create_account("0x" + "a2" * 32)
        for key in keys:
            world.add_delegate_key(first, key, "k")
        world.remove_delegate_key(first, keys[0])
        world.set_active(second, False)
        world.set_active(second, True)  # reactivation grants: not an account change event
        package = world.packages["memwal"]
        async with reader_for(world, protocol) as reader:
            removed = await reader.account_change_events(package, "DelegateKeyRemoved", None, 20)
            deactivated = await reader.account_change_events(package, "AccountDeactivated", None, 20)
            assert [(event.kind, event.account_id) for event in removed.events] == [("DelegateKeyRemoved", first)]
            assert [(event.kind, event.account_id) for event in deactivated.events] == [("AccountDeactivated", second)]
            world.remove_delegate_key(first, keys[1])
            stored = EventCursor.from_json(EventCursor(removed.next_cursor.tx_digest, removed.next_cursor.event_seq).to_json())
            resumed = await reader.account_change_events(package, "DelegateKeyRemoved", stored, 20)
            assert [event.account_id for event in resumed.events] == [first]
            with pytest.raises(ValueError, match="not an account change event"):
                await reader.account_change_events(package, "AccountCreated", None, 20)


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


class TestKeyServerRecords:
    @BACKENDS
    async def test_v2_independent_upgraded_and_committee_servers(self, world, protocol):
        independent = world.register_independent_v2_key_server("indie", "http://127.0.0.1:2", bytes([1]) * 96)
        upgraded = world.register_key_server("old", "http://127.0.0.1:3", bytes([2]) * 96)
        world.upgrade_key_server_to_v2(upgraded)
        world.update_key_server_url(upgraded, "http://127.0.0.1:4")
        members = [(f"member-{n}", f"http://127.0.0.1:{10 + n}", bytes([10 + n]) * 96) for n in range(3)]
        committee = world.register_committee_key_server("committee", bytes([9]) * 96, 2, members)
        async with reader_for(world, protocol) as reader:
            info = await reader.key_server(independent)
            assert (info.record_version, info.url, info.name, info.public_key) == (2, "http://127.0.0.1:2", "indie", bytes([1]) * 96)
            info = await reader.key_server(upgraded)  # both records: V2 wins, and update moved both URLs
            assert (info.record_version, info.url, info.name) == (2, "http://127.0.0.1:4", "old")
            info = await reader.key_server(committee)
        assert info.record_version == 2 and info.url is None and info.public_key == bytes([9]) * 96
        assert isinstance(info.server_type, CommitteeServer)
        assert (info.server_type.threshold, info.server_type.version) == (2, 0)
        assert [(m.name, m.url, m.partial_public_key, m.party_id) for m in info.server_type.members] == [
            (name, url, key, party) for party, (name, url, key) in enumerate(members)]
        assert world.find_field(upgraded, "u64", (1).to_bytes(8, "little")).struct.struct("value").fields["url"] == "http://127.0.0.1:4"

    def test_committee_servers_cannot_change_url(self, world):
        members = [(f"m{n}", f"http://127.0.0.1:{n + 1}", bytes([n + 1]) * 96) for n in range(2)]
        committee = world.register_committee_key_server("c", bytes(96), 2, members)
        with pytest.raises(MoveAbort, match="committee"):
            world.update_key_server_url(committee, "http://elsewhere")
        with pytest.raises(MoveAbort, match="threshold"):
            world.register_committee_key_server("c", bytes(96), 1, members)


class TestEffects:
    @BACKENDS
    async def test_effects_carry_the_new_gas_coin_and_object_versions(self, world, protocol):
        coin = world.fund(WALLET, 10**9)
        blob = world.create_blob_object(BLOB_ID, 17, WALLET)
        async with reader_for(world, protocol) as reader:
            reference = await reader.object_ref(blob)
            tx_bytes, signature = build_blob_metadata_transaction(
                seed=WALLET_SEED, walrus_package_id=world.packages["walrus"], blobs=[reference],
                tags=BlobTags(owner=USER, namespace="n", memwal_package_id=world.packages["memwal"]),
                gas_coins=[await reader.object_ref(coin)], gas_price=await reader.gas_price(), gas_budget=50_000_000,
            )
            executed = await reader.execute_transaction(tx_bytes, [signature])
            assert await reader.transaction_indexed(executed.digest)
            assert not await reader.transaction_indexed("11111111111111111111111111111111")
        stored_coin, stored_blob = world.get(coin), world.get(blob)
        assert executed.gas_object == ObjectRef(coin, stored_coin.version, stored_coin.digest)
        assert executed.reference_of(blob) == ObjectRef(blob, stored_blob.version, stored_blob.digest)
        blob_change = next(item for item in executed.changed if item.reference.object_id == blob)
        assert blob_change.owner == USER and not blob_change.created
        metadata = world.find_field(blob, "vector<u8>", b"\x08metadata")
        assert any(item.created and item.reference.object_id == metadata.object_id for item in executed.changed)

    @BACKENDS
    async def test_effects_name_the_epoch_and_the_coins_a_split_created(self, world, protocol):
        coin = world.fund(WALLET, 10**10)
        async with reader_for(world, protocol) as reader:
            tx_bytes, signature = build_gas_split_transaction(
                seed=WALLET_SEED, amounts=[10**9, 2 * 10**9], gas_coin=await reader.object_ref(coin),
                gas_price=await reader.gas_price(), gas_budget=50_000_000)
            executed = await reader.execute_transaction(tx_bytes, [signature])
            coins = await reader.gas_coins(WALLET)
        assert executed.epoch == world.epoch
        created = [item.reference for item in executed.changed if item.created]
        assert all(item.owner == WALLET for item in executed.changed if item.created)
        assert sorted(world.get(ref.object_id).struct.number("balance") for ref in created) == [10**9, 2 * 10**9]
        assert sorted(coins, key=lambda ref: ref.object_id) == sorted([executed.gas_object, *created], key=lambda ref: ref.object_id)
        assert world.get(coin).struct.number("balance") == 10**10 - 3 * 10**9 - 1000 * 1000  # split, then gas

    @pytest.mark.parametrize("amounts, kind", [([10**10], "InsufficientCoinBalance"), ([10**9], "UnusedValueWithoutDrop")])
    def test_a_split_beyond_the_balance_or_never_transferred_is_refused(self, world, amounts, kind):
        coin = world.fund(WALLET, 10**10)
        builder = ProgrammableTransactionBuilder()
        coins = builder.split_coins(Argument.gas_coin(), [builder.pure(bcs.u64(amount)) for amount in amounts])
        if kind == "InsufficientCoinBalance":  # the budget stays on the gas coin: all of it cannot be split off
            builder.transfer_objects(coins, builder.pure(bcs.address(WALLET)))
        stored = world.get(coin)
        gas = GasData((ObjectRef(coin, stored.version, stored.digest),), WALLET, 1000, 50_000_000)
        tx_bytes = TransactionData(builder.finish(), WALLET, gas).to_bcs()
        with pytest.raises(TransactionError, match=kind):
            world.apply_transaction(tx_bytes, [sign_transaction(WALLET_SEED, tx_bytes)])
        assert world.get(coin) == stored

    @BACKENDS
    async def test_chain_identifier_is_the_same_on_every_backend(self, world, protocol):
        async with reader_for(world, protocol) as reader:
            assert await reader.chain_identifier() == CHAIN_IDENTIFIER


class TestIndexingLag:
    """GraphQL and gRPC read from a lagging index; execution and JSON-RPC see the current state."""

    @pytest.fixture
    def lagging(self, tmp_path):
        now = [1000.0]
        world = World(tmp_path / "lag.json", clock=lambda: now[0], indexing_lag_seconds=5.0)
        world.publish_memwal_package()
        world.publish_walrus_package()
        world.create_registry()
        now[0] += 10  # everything so far is indexed
        return world, now

    @BACKENDS
    async def test_reads_trail_execution_until_the_lag_has_passed(self, lagging, protocol):
        world, now = lagging
        coin = world.fund(WALLET, 10**9)
        blob = world.create_blob_object(BLOB_ID, 17, WALLET)
        async with reader_for(world, protocol) as reader:
            if protocol == "jsonrpc":
                assert (await reader.object_ref(blob)).object_id == blob
                return
            with pytest.raises(ObjectNotFound):
                await reader.object_ref(blob)
            assert await reader.gas_coins(WALLET) == []
            now[0] += 5
            reference = await reader.object_ref(blob)
            tx_bytes, signature = build_blob_metadata_transaction(
                seed=WALLET_SEED, walrus_package_id=world.packages["walrus"], blobs=[reference],
                tags=BlobTags(owner=USER, namespace="n", memwal_package_id=world.packages["memwal"]),
                gas_coins=await reader.gas_coins(WALLET), gas_price=await reader.gas_price(), gas_budget=50_000_000,
            )
            executed = await reader.execute_transaction(tx_bytes, [signature])  # executes against the current state
            assert not await reader.transaction_indexed(executed.digest)
            assert await reader.owned_blobs(USER, world.packages["walrus"]) == []  # not indexed yet
            stale = await reader.gas_coins(WALLET)
            assert stale[0].version < executed.gas_object.version  # what a second transaction must not use
            now[0] += 5
            assert await reader.transaction_indexed(executed.digest)
            assert [b.object_id for b in await reader.owned_blobs(USER, world.packages["walrus"])] == [blob]
            assert await reader.gas_coins(WALLET) == [executed.gas_object]
        assert world.get(coin).version == executed.gas_object.version


class TestEventCursorsAcrossBackends:
    async def test_an_indexer_can_switch_protocols_without_losing_its_place(self, world):
        package = world.packages["memwal"]
        first = ["0x" + f"{n:064x}" for n in range(1, 4)]
        for owner in first:
            world.create_account(owner)
        cursor, expected = None, first
        for protocol in ("graphql", "grpc", "jsonrpc", "grpc", "graphql"):
            async with reader_for(world, protocol) as reader:
                page = await reader.account_created_events(package, cursor, 50)
            assert [event.owner for event in page.events] == expected
            added = "0x" + f"{len(world.events) + 100:064x}"
            expected = [added]
            world.create_account(added)
            cursor = EventCursor.from_json(page.next_cursor.to_json())


class TestEventNotifications:
    async def test_grpc_subscription_wakes_on_new_account_events(self, world):
        async with reader_for(world, "grpc") as reader:
            assert isinstance(reader, EventNotifier)
            stream = reader.account_created_notifications(world.packages["memwal"])
            pending = asyncio.ensure_future(stream.__anext__())
            await asyncio.sleep(0.3)  # the subscription starts at the tip: nothing yet
            assert not pending.done()
            world.create_account(USER)
            await asyncio.wait_for(pending, 5)
            await stream.aclose()
