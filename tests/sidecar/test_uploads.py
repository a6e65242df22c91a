"""sidecar.uploads.UploadService on the localnet: upload, tag and transfer; one blob object per job id
(the Redis journal); Walrus' alreadyCertified answers; and read-after-write on a read side that lags."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter

import httpx
import nacl.signing
import pytest
import pytest_asyncio
import redis.asyncio as redis

from chain.address import sui_address
from chain.backends import make_chain_reader
from chain.consistency import ReadLagPolicy
from chain.errors import ObjectNotFound, TransactionRejected
from chain.keys import encode_sui_private_key
from chain.programmable_transaction import SplitCoins, TransactionData, TransferObjects
from chain.reader import ObjectRef
from localnet.runner import run_localnet
from memwal_common.stage_timing import DISABLED as STAGES_OFF
from memwal_common.stage_timing import LOGGER_NAME, StageTimer, parse_stage_line
from sidecar._keys import WalletPool  # the sidecar's own construction path (sidecar/services.py)
from sidecar.errors import UpstreamUnavailable
from sidecar.gas import GasCoinPool, ReferenceGasPrice
from sidecar.uploads import JOURNAL_PREFIX, UploadJournal, UploadService
from sidecar.walrus import WalrusClient

pytestmark = pytest.mark.database

URLS = {"graphql": "sui_graphql_url", "grpc": "sui_grpc_url", "jsonrpc": "sui_rpc_url"}


def service(localnet, http, *, protocol="graphql", cache=None, read_lag=None, chain=None, per_wallet=1, concurrency=2,
            batch=1, gas_leases=None, stage_timer=STAGES_OFF):
    chain = chain or make_chain_reader(localnet[URLS[protocol]], protocol=protocol, http=http)
    walrus = WalrusClient(http=http, publisher_url=localnet["walrus_publisher_url"],
                          aggregator_urls=tuple(localnet["walrus_aggregator_urls"]), race_after_ms=50,
                          timeout_seconds=10, max_blob_bytes=1024 * 1024)
    uploads = UploadService(chain=chain, walrus=walrus, wallets=WalletPool(list(localnet["server_wallet_keys"])),
                            walrus_package_id=localnet["walrus_package_id"], gas_budget=50_000_000, concurrency=concurrency,
                            journal=UploadJournal(cache), read_lag=read_lag or ReadLagPolicy(timeout_seconds=10),
                            transactions_per_wallet=per_wallet, batch_max_blobs=batch, gas_leases=gas_leases,
                            stage_timer=stage_timer)
    return uploads, chain


class CountingChain:
    """A real chain reader that counts each call by name and can hold executions at a barrier."""

    def __init__(self, inner, barrier: asyncio.Barrier | None = None) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.barrier = barrier
        self.gas_payments: list[tuple[str, ...]] = []
        self.transfer_sizes: list[int] = []  # Blobs handed over per executed transfer transaction

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        async def counted(*args, **kwargs):
            self.calls[name] += 1
            return await method(*args, **kwargs)

        return counted

    async def execute_transaction(self, tx_bytes, signatures):
        self.calls["execute_transaction"] += 1
        data = TransactionData.from_bcs(tx_bytes)
        self.gas_payments.append(tuple(coin.object_id for coin in data.gas.payment))
        splits = any(isinstance(command, SplitCoins) for command in data.transaction.commands)
        if self.barrier is not None and not splits:  # every transfer of the round is in flight before any executes
            await asyncio.wait_for(self.barrier.wait(), timeout=60)
        executed = await self.inner.execute_transaction(tx_bytes, signatures)
        if not splits:
            self.transfer_sizes.append(sum(len(command.objects) for command in data.transaction.commands
                                           if isinstance(command, TransferObjects)))
        return executed


def new_wallet() -> tuple[str, str]:
    seed = os.urandom(32)
    return encode_sui_private_key(seed), sui_address(bytes(nacl.signing.SigningKey(seed).verify_key))


async def fund(http, localnet, address: str, amount: int) -> None:
    (await http.post(localnet["admin_url"] + "/_localnet/fund", json={"address": address, "amount": amount})).raise_for_status()


def new_owner() -> str:
    return "0x" + os.urandom(32).hex()


def upload_arguments(localnet, owner, job_id=None):
    return dict(owner=owner, namespace="default", package_id=localnet["memwal_package_id"], epochs=1,
                job_id=job_id or "job-" + os.urandom(8).hex(), agent_id=None)


@pytest_asyncio.fixture(loop_scope="session")
async def cache(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


class TestUploadService:
    @pytest.mark.parametrize("protocol", ["graphql", "grpc", "jsonrpc"])
    async def test_upload_tags_and_transfers_to_the_owner(self, localnet, http, protocol):
        uploads, chain = service(localnet, http, protocol=protocol)
        owner = new_owner()
        result = await uploads.upload(os.urandom(200), owner=owner, namespace="ns", package_id=localnet["memwal_package_id"],
                                      epochs=1, job_id="job-1-" + os.urandom(4).hex(), agent_id="agent")
        assert result.transfer_status == "ok"
        [blob] = await chain.owned_blobs(owner, localnet["walrus_package_id"])
        assert (blob.object_id, blob.blob_id) == (result.object_id, result.blob_id)
        assert blob.metadata["memwal_namespace"] == "ns" and blob.metadata["memwal_agent_id"] == "agent"
        assert uploads.active == 0
        await chain.aclose()

    async def test_same_job_twice_gives_one_blob_object(self, localnet, http, cache):
        uploads, chain = service(localnet, http, cache=cache)
        owner, data = new_owner(), os.urandom(300)
        arguments = upload_arguments(localnet, owner)
        first = await uploads.upload(data, **arguments)
        wallet = uploads._wallets.address(uploads._wallets.index_for(arguments["job_id"]))
        before = await chain.gas_coins(wallet)
        second = await uploads.upload(data, **arguments)  # a retry after a crash: already transferred
        assert (second.blob_id, second.object_id) == (first.blob_id, first.object_id)
        assert [b.blob_id for b in await chain.owned_blobs(owner, localnet["walrus_package_id"])] == [first.blob_id]
        assert await chain.gas_coins(wallet) == before  # no second transaction was paid for

    async def test_a_retry_after_publishing_tags_the_blob_already_stored(self, localnet, http, cache):
        uploads, chain = service(localnet, http, cache=cache)
        owner, data = new_owner(), os.urandom(222)
        arguments = upload_arguments(localnet, owner)
        wallet = uploads._wallets.address(uploads._wallets.index_for(arguments["job_id"]))
        # the first attempt published, recorded that, and crashed before tagging
        published = (await http.put(f"{localnet['walrus_publisher_url']}/v1/blobs",
                                     params={"epochs": "1", "send_object_to": wallet}, content=data)).json()
        blob = published["newlyCreated"]["blobObject"]
        await cache.set(JOURNAL_PREFIX + arguments["job_id"],
                        json.dumps({"blobId": blob["blobId"], "objectId": blob["id"], "transferred": False}))
        result = await uploads.upload(data, **arguments)
        assert result.object_id == blob["id"]
        assert [b.object_id for b in await chain.owned_blobs(owner, localnet["walrus_package_id"])] == [blob["id"]]
        assert blob["blobId"] not in [b.blob_id for b in await chain.owned_blobs(wallet, localnet["walrus_package_id"])]

    async def test_same_content_for_two_owners_gives_two_objects(self, localnet, http):
        uploads, chain = service(localnet, http)
        data = os.urandom(128)
        first_owner, second_owner = new_owner(), new_owner()
        first = await uploads.upload(data, **upload_arguments(localnet, first_owner))
        second = await uploads.upload(data, **upload_arguments(localnet, second_owner))
        assert first.blob_id == second.blob_id and first.object_id != second.object_id
        assert [b.object_id for b in await chain.owned_blobs(second_owner, localnet["walrus_package_id"])] == [second.object_id]


async def three_transfers_in_flight(localnet, http, *, publish_slots):
    """Three uploads at once from a fresh one-coin wallet that may have three in flight; the barrier lets no
    transfer execute before all three are signed. Returns (wallet address, chain, uploads, owner)."""
    key, address = new_wallet()
    await fund(http, localnet, address, 10**10)
    chain = CountingChain(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http),
                          asyncio.Barrier(3))
    uploads, _ = service({**localnet, "server_wallet_keys": [key]}, http, chain=chain, per_wallet=3,
                         concurrency=publish_slots)
    owner = new_owner()
    results = await asyncio.gather(*(uploads.upload(os.urandom(150), **upload_arguments(localnet, owner))
                                     for _ in range(3)))
    assert {result.transfer_status for result in results} == {"ok"}
    return address, chain, uploads, owner


class TestStageTiming:
    async def test_each_stage_of_an_upload_is_logged_with_its_job_id_and_nothing_else(self, localnet, http, cache,
                                                                                       caplog):
        uploads, _ = service(localnet, http, cache=cache, stage_timer=StageTimer(enabled=True))
        arguments = upload_arguments(localnet, new_owner())
        data = os.urandom(180)
        with caplog.at_level("INFO", logger=LOGGER_NAME):
            await uploads.upload(data, **arguments)
        lines = [record.getMessage() for record in caplog.records if record.name == LOGGER_NAME]
        stages = [sample.stage for sample in map(parse_stage_line, lines) if sample and sample.key == arguments["job_id"]]
        assert stages == ["upload.journal_read", "upload.slot_wait", "upload.publish", "upload.journal_write",
                          "upload.object_visible", "upload.gas_prepare", "upload.gas_wait", "upload.transfer",
                          "upload.transaction_indexed", "upload.journal_write"]
        assert len(stages) == len(lines)  # every line is a stage line of this job: no owner, no data
        assert not any(arguments["owner"][2:] in line or data.hex()[:16] in line for line in lines)

    async def test_off_by_default(self, localnet, http, caplog):
        uploads, _ = service(localnet, http)
        with caplog.at_level("INFO", logger=LOGGER_NAME):
            await uploads.upload(os.urandom(90), **upload_arguments(localnet, new_owner()))
        assert [record for record in caplog.records if record.name == LOGGER_NAME] == []


class TestTransactionsInFlight:
    async def test_concurrent_jobs_on_one_wallet_pay_with_distinct_coins_and_all_succeed(self, localnet, http):
        """Three transfers of one wallet are in flight at once (the barrier lets none execute before all three
        are signed), each with its own gas coin; then three more reuse the coins at their effects' versions."""
        chain = CountingChain(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http),
                              asyncio.Barrier(3))
        uploads, _ = service(localnet, http, chain=chain, per_wallet=3, concurrency=3)
        owner = new_owner()
        for _ in range(2):
            results = await asyncio.gather(*(uploads.upload(os.urandom(150), **upload_arguments(localnet, owner))
                                             for _ in range(3)))
            assert {result.transfer_status for result in results} == {"ok"}
        first_round, second_round = chain.gas_payments[:3], chain.gas_payments[3:]
        assert len({coins for coins in first_round}) == 3 and all(len(coins) == 1 for coins in first_round)
        assert sorted(second_round) == sorted(first_round)  # the same three coins, at newer versions
        owned = await chain.inner.owned_blobs(owner, localnet["walrus_package_id"])
        assert len(owned) == 6

    async def test_a_wallet_with_one_coin_splits_off_more_and_runs_them_in_flight(self, localnet, http):
        address, chain, _uploads, _owner = await three_transfers_in_flight(localnet, http, publish_slots=3)
        _, *transfers = chain.gas_payments  # the split went first, alone
        assert len(transfers) == 3 and len(set(transfers)) == 3
        assert len(await chain.inner.gas_coins(address)) == 3

    async def test_only_the_publish_takes_an_upload_slot_not_the_transfer_after_it(self, localnet, http):
        """One upload slot, three coins: all three transfers are in flight at once (the barrier lets none execute
        before all three are signed), so no upload held its slot past its publish."""
        _address, chain, uploads, owner = await three_transfers_in_flight(localnet, http, publish_slots=1)
        assert len(await chain.inner.owned_blobs(owner, localnet["walrus_package_id"])) == 3
        assert uploads.active == 0

    async def test_a_wallet_too_poor_to_split_keeps_going_with_its_one_coin(self, localnet, http, caplog):
        key, address = new_wallet()
        await fund(http, localnet, address, 60_000_000)  # covers a transfer's budget, not 20 budgets more
        chain = make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http)
        uploads, _ = service({**localnet, "server_wallet_keys": [key]}, http, chain=chain, per_wallet=3, concurrency=3)
        owner = new_owner()
        results = await asyncio.gather(*(uploads.upload(os.urandom(150), **upload_arguments(localnet, owner))
                                         for _ in range(2)))
        assert {result.transfer_status for result in results} == {"ok"}
        assert "could not split" in caplog.text
        assert len(await chain.gas_coins(address)) == 1

    async def test_versions_and_gas_price_come_from_effects_not_from_reads(self, localnet, http):
        """Five transfers from one wallet: the coin list and the gas price are read once; each Blob once
        (someone else created it); the coin's later versions come from effects."""
        chain = CountingChain(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http))
        uploads, _ = service(localnet, http, chain=chain)
        owner = new_owner()
        for _ in range(5):
            await uploads.upload(os.urandom(140), **upload_arguments(localnet, owner))
        assert chain.calls["execute_transaction"] == 5
        assert chain.calls["gas_coins"] == 1 and chain.calls["gas_price"] == 1
        assert chain.calls["object_ref"] == 5  # the fresh Blobs, never the gas coin

    async def test_a_coin_whose_transaction_failed_is_reread_before_its_next_use(self, localnet, http):
        chain = CountingChain(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http))
        pool = GasCoinPool(chain, WalletPool(list(localnet["server_wallet_keys"])).addresses, per_wallet=1)
        async with pool.lease(0) as lease:
            first = lease.coin  # not settled: as if the execution's outcome were unknown
        async with pool.lease(0) as lease:
            assert lease.coin == first and chain.calls["object_ref"] == 1

    async def test_a_read_older_than_the_effects_never_moves_a_coin_back(self, localnet, http):
        chain = CountingChain(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http))
        pool = GasCoinPool(chain, WalletPool(list(localnet["server_wallet_keys"])).addresses, per_wallet=1)
        async with pool.lease(0) as lease:
            coin = lease.coin
            newer = ObjectRef(coin.object_id, coin.version + 100, coin.digest)  # what effects would have said
            lease.coin = newer  # the version this lease knew; unsettled, so it is re-read next time
        async with pool.lease(0) as lease:
            assert lease.coin == newer and chain.calls["object_ref"] == 1

    async def test_a_lease_whose_task_is_cancelled_gives_its_coin_back(self, localnet, http):
        chain = CountingChain(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http))
        pool = GasCoinPool(chain, WalletPool(list(localnet["server_wallet_keys"])).addresses, per_wallet=1)
        inside = asyncio.Event()

        async def hold() -> None:
            async with pool.lease(0):
                inside.set()
                await asyncio.Event().wait()  # until cancelled, as a request whose client went away

        holder = asyncio.create_task(hold())
        await inside.wait()
        holder.cancel()
        await asyncio.gather(holder, return_exceptions=True)
        async with pool.lease(0) as lease:  # the one coin is back (in doubt: re-read once)
            assert lease.coin.object_id and chain.calls["object_ref"] == 1

    async def test_gas_price_is_read_again_in_a_new_epoch_only(self, localnet, http):
        chain = CountingChain(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http))
        price = ReferenceGasPrice(chain)
        await price.get()
        price.observe(7)
        price.observe(7)
        await price.get()
        assert chain.calls["gas_price"] == 1
        price.observe(8)
        await price.get()
        assert chain.calls["gas_price"] == 2


class HeldFirstTransfer(CountingChain):
    """Holds the first transfer until ``others_queued()`` says the rest wait behind it; optionally refuses
    every transaction that carries several Blobs, as a node refusing a batch would."""

    def __init__(self, inner, others_queued, *, refuse_batches: bool = False) -> None:
        super().__init__(inner)
        self.others_queued = others_queued
        self.refuse_batches = refuse_batches
        self.refused = 0

    async def execute_transaction(self, tx_bytes, signatures):
        data = TransactionData.from_bcs(tx_bytes)
        blobs = sum(len(command.objects) for command in data.transaction.commands if isinstance(command, TransferObjects))
        if not self.transfer_sizes and not self.refused:
            async def queued() -> None:
                while not self.others_queued():
                    await asyncio.sleep(0.01)
            await asyncio.wait_for(queued(), timeout=60)
        if self.refuse_batches and blobs > 1:
            self.refused += 1
            raise TransactionRejected("refused for the test")
        return await super().execute_transaction(tx_bytes, signatures)


class TestQueuedTransfersShareATransaction:
    async def _five_jobs(self, localnet, http, *, refuse_batches: bool):
        key, address = new_wallet()
        await fund(http, localnet, address, 10**10)  # one coin: every job after the first waits for it
        uploads = None
        chain = HeldFirstTransfer(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http),
                                  lambda: uploads is not None and uploads.batches.queued(0) == 4,
                                  refuse_batches=refuse_batches)
        uploads, _ = service({**localnet, "server_wallet_keys": [key]}, http, chain=chain, per_wallet=1,
                             concurrency=5, batch=8)
        owners = [new_owner(), new_owner()]
        results = await asyncio.gather(*(
            uploads.upload(os.urandom(150), **{**upload_arguments(localnet, owners[n % 2]), "namespace": f"ns{n}"})
            for n in range(5)))
        assert {result.transfer_status for result in results} == {"ok"}
        for owner, expected in zip(owners, ([0, 2, 4], [1, 3]), strict=True):
            held = await chain.inner.owned_blobs(owner, localnet["walrus_package_id"])
            assert sorted(blob.metadata["memwal_namespace"] for blob in held) == [f"ns{n}" for n in expected]
            assert {blob.metadata["memwal_owner"] for blob in held} == {owner}
        return uploads, chain

    async def test_jobs_waiting_for_the_busy_coin_go_out_together_each_to_its_owner(self, localnet, http):
        uploads, chain = await self._five_jobs(localnet, http, refuse_batches=False)
        assert chain.transfer_sizes == [1, 4]  # the first alone, the four that queued behind it in one
        assert uploads.batches.batched_transactions == 1

    async def test_a_refused_batch_is_sent_again_one_job_at_a_time(self, localnet, http):
        uploads, chain = await self._five_jobs(localnet, http, refuse_batches=True)
        assert chain.refused == 1 and chain.transfer_sizes == [1, 1, 1, 1, 1]
        assert uploads.batches.batched_transactions == 0


class TestAlreadyCertified:
    async def test_a_blob_the_publisher_keeps_is_not_taken_for_ours(self, localnet, http):
        """The publisher answers alreadyCertified.object for a deletable Blob its own wallet owns; our wallet
        cannot tag or transfer that one, so the content is stored again for us."""
        uploads, chain = service(localnet, http)
        data = os.urandom(180)
        kept = (await http.put(f"{localnet['walrus_publisher_url']}/v1/blobs", content=data)).json()
        publisher_object = kept["newlyCreated"]["blobObject"]["id"]
        again = (await http.put(f"{localnet['walrus_publisher_url']}/v1/blobs", content=data)).json()
        assert again["alreadyCertified"]["object"] == publisher_object  # what the upload will be told
        owner = new_owner()
        result = await uploads.upload(data, **upload_arguments(localnet, owner))
        assert result.object_id != publisher_object
        assert [b.object_id for b in await chain.owned_blobs(owner, localnet["walrus_package_id"])] == [result.object_id]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def lagging(tmp_path_factory):
    """A localnet whose GraphQL and gRPC reads trail execution by a second, as an indexer does."""
    async with run_localnet(tmp_path_factory.mktemp("lagging"), key_servers=1, threshold=1,
                            indexing_lag_seconds=1.0) as info:
        yield info


class TestReadAfterWrite:
    """Each step fails without its rule: a fresh Blob is not readable at once (wait for it), a second
    transaction must not pay with the gas coin version the index still shows (use effects), and a read
    right after the upload must see it (wait for the transaction)."""

    @pytest.mark.parametrize("protocol", ["graphql", "grpc"])
    async def test_back_to_back_uploads_from_one_wallet_then_an_immediate_read(self, lagging, http, protocol):
        uploads, chain = service(lagging, http, protocol=protocol)
        owner = new_owner()
        results = [await uploads.upload(os.urandom(100 + n), **upload_arguments(lagging, owner)) for n in range(2)]
        owned = await chain.owned_blobs(owner, lagging["walrus_package_id"])
        assert sorted(b.object_id for b in owned) == sorted(r.object_id for r in results)
        await chain.aclose()

    async def test_a_second_transaction_pays_with_the_coin_from_the_first_ones_effects(self, lagging, http, cache):
        """An index slower than our patience: the first transfer's wait gives up (logged, not failed), and the
        second transfer must still pay with the gas coin's new version, which only the effects know."""
        uploads, chain = service(lagging, http, cache=cache,
                                 read_lag=ReadLagPolicy(timeout_seconds=0.05, first_delay_seconds=0.01))
        wallet = uploads._wallets.address(0)
        jobs = []
        for _ in range(2):  # two blobs the publisher stored for the wallet, already indexed
            data = os.urandom(120)
            blob = (await http.put(f"{lagging['walrus_publisher_url']}/v1/blobs",
                                   params={"epochs": "1", "send_object_to": wallet}, content=data)).json()
            blob = blob["newlyCreated"]["blobObject"]
            job_id = "job-" + os.urandom(8).hex()
            await cache.set(JOURNAL_PREFIX + job_id, json.dumps({"blobId": blob["blobId"], "objectId": blob["id"],
                                                                 "transferred": False}))
            jobs.append((data, job_id, blob["id"]))
        await asyncio.sleep(lagging["indexing_lag_seconds"] + 0.2)
        owner = new_owner()
        for data, job_id, object_id in jobs:
            result = await uploads.upload(data, **upload_arguments(lagging, owner, job_id))
            assert result.object_id == object_id
        await chain.aclose()

    async def test_without_waiting_the_fresh_blob_is_not_there_yet(self, lagging, http):
        """The condition the waits exist for, observed directly."""
        chain = make_chain_reader(lagging["sui_graphql_url"], protocol="graphql", http=http)
        wallet_blob = (await http.put(f"{lagging['walrus_publisher_url']}/v1/blobs", content=os.urandom(90))).json()
        with pytest.raises(ObjectNotFound):
            await chain.object_ref(wallet_blob["newlyCreated"]["blobObject"]["id"])


async def test_an_unreachable_publisher_is_transient(localnet):
    async with httpx.AsyncClient() as http:
        uploads, _ = service({**localnet, "walrus_publisher_url": "http://127.0.0.1:9"}, http)
        with pytest.raises(UpstreamUnavailable, match="publisher unreachable"):
            await uploads.upload(b"x" * 10, **upload_arguments(localnet, new_owner()))
