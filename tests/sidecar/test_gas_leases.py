"""sidecar.gas_leases on a real Redis and a real 3-master Redis Cluster, and GasCoinPool / UploadService
instances ("sidecars") sharing one server wallet through it on the localnet."""

from __future__ import annotations

import asyncio
import os
from collections import Counter

import pytest
import pytest_asyncio
import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster

from chain.backends import make_chain_reader
from chain.errors import TransactionRejected
from chain.programmable_transaction import TransactionData
from chain.reader import ObjectRef
from sidecar.errors import UpstreamUnavailable
from sidecar.gas import GasCoinPool
from sidecar.gas_leases import GasLeaseStore, lease_key
from tests.sidecar.test_uploads import CountingChain, fund, new_owner, new_wallet, service, upload_arguments

pytestmark = pytest.mark.database


def coin_id() -> str:
    return "0x" + os.urandom(32).hex()


def wallet_address() -> str:
    return "0x" + os.urandom(32).hex()


@pytest_asyncio.fixture(loop_scope="session", params=["single", "cluster"])
async def client(request, redis_url):
    if request.param == "single":
        made = redis.Redis.from_url(redis_url)
    else:
        made = RedisCluster.from_url(request.getfixturevalue("redis_cluster_url"))
    yield made
    await made.aclose()


class TestGasLeaseStore:
    async def test_a_held_coin_is_refused_to_a_second_holder(self, client):
        store = GasLeaseStore(client, ttl_seconds=60)
        wallet, coin = wallet_address(), coin_id()
        first = await store.take(wallet, coin)
        assert first is not None and first.known is None and not first.in_doubt
        assert await store.take(wallet, coin) is None
        assert await store.take(wallet, coin_id()) is not None  # another coin of the wallet is free

    async def test_release_hands_the_effects_version_to_the_next_holder(self, client):
        store = GasLeaseStore(client, ttl_seconds=60)
        wallet, coin = wallet_address(), coin_id()
        first = await store.take(wallet, coin)
        assert first is not None
        assert await store.release(wallet, coin, first.token, ObjectRef(coin, 42, "digest42"))
        second = await store.take(wallet, coin)
        assert second is not None and second.known == ObjectRef(coin, 42, "digest42") and not second.in_doubt

    async def test_an_unknown_outcome_leaves_the_coin_in_doubt(self, client):
        store = GasLeaseStore(client, ttl_seconds=60)
        wallet, coin = wallet_address(), coin_id()
        first = await store.take(wallet, coin)
        assert first is not None
        assert await store.release(wallet, coin, first.token, ObjectRef(coin, 7, "d7"))
        second = await store.take(wallet, coin)
        assert second is not None
        assert await store.release(wallet, coin, second.token, None)
        third = await store.take(wallet, coin)
        assert third is not None and third.in_doubt and third.known == ObjectRef(coin, 7, "d7")

    async def test_only_the_holder_releases_and_an_older_version_never_wins(self, client):
        store = GasLeaseStore(client, ttl_seconds=60)
        wallet, coin = wallet_address(), coin_id()
        first = await store.take(wallet, coin)
        assert first is not None
        assert not await store.release(wallet, coin, "not-the-token", ObjectRef(coin, 99, "d99"))
        assert await store.take(wallet, coin) is None  # still held
        assert await store.release(wallet, coin, first.token, ObjectRef(coin, 10, "d10"))
        second = await store.take(wallet, coin)
        assert second is not None
        assert await store.release(wallet, coin, second.token, ObjectRef(coin, 9, "d9"))  # a stale report
        third = await store.take(wallet, coin)
        assert third is not None and third.known == ObjectRef(coin, 10, "d10")

    async def test_a_dead_holders_lease_expires_and_the_next_holder_rereads(self, client):
        store = GasLeaseStore(client, ttl_seconds=0.2)
        wallet, coin = wallet_address(), coin_id()
        dead = await store.take(wallet, coin)  # its holder is killed mid-transaction: never released
        assert dead is not None
        taken = None
        for _ in range(100):
            taken = await store.take(wallet, coin)
            if taken is not None:
                break
            await asyncio.sleep(0.05)
        assert taken is not None and taken.in_doubt
        assert not await store.release(wallet, coin, dead.token, ObjectRef(coin, 5, "d5"))  # too late
        assert await store.take(wallet, coin) is None  # the new holder keeps it

    async def test_both_keys_of_a_coin_share_the_wallets_hash_tag(self):
        wallet, coin = wallet_address(), coin_id()
        key = lease_key(wallet, coin)
        assert key.startswith("memwal:gas:v1:{" + wallet + "}:")
        assert key.count("{") == 1  # ":ref" appended keeps the one tag


class SharedPayments:
    """Every gas payment of several pools over one localnet: (coin, version) pairs and rejections."""

    def __init__(self) -> None:
        self.paid: Counter[tuple[str, int]] = Counter()
        self.rejected = 0
        self.in_flight: set[tuple[str, int]] = set()
        self.overlaps = 0  # a coin version paid while another transaction paying with it was in flight


class ObservedChain(CountingChain):
    def __init__(self, inner, shared: SharedPayments) -> None:
        super().__init__(inner)
        self.shared = shared

    async def execute_transaction(self, tx_bytes, signatures):
        payment = [(coin.object_id, coin.version) for coin in TransactionData.from_bcs(tx_bytes).gas.payment]
        for paid in payment:
            if paid in self.shared.in_flight:
                self.shared.overlaps += 1
            self.shared.in_flight.add(paid)
            self.shared.paid[paid] += 1
        try:
            return await super().execute_transaction(tx_bytes, signatures)
        except TransactionRejected:
            self.shared.rejected += 1
            raise
        finally:
            self.shared.in_flight.difference_update(payment)


async def funded_wallet(http, localnet) -> list[str]:
    """A fresh server wallet with one gas coin (its coin ids are new: no lease of another test names them)."""
    _, address = new_wallet()
    await fund(http, localnet, address, 10**10)
    return [address]


async def hand_back_unused(pool: GasCoinPool, lease) -> None:
    """Release a lease that paid for nothing and wait until its fleet lease has ended."""
    lease.unused()
    pool.release(0, lease)
    await pool.drain()


class TestSidecarsSharingAWallet:
    async def test_two_sidecars_never_pay_with_one_coin_version_at_once(self, localnet, http, redis_url):
        """Two upload services (two sidecars) on one wallet with 3 coins, 10 concurrent uploads each: every
        coin version pays once, nothing is rejected, and both ran transactions."""
        key, address = new_wallet()
        await fund(http, localnet, address, 10**10)
        shared = SharedPayments()
        clients = [redis.Redis.from_url(redis_url) for _ in range(2)]
        sidecars = []
        for index, client in enumerate(clients):
            chain = ObservedChain(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http), shared)
            uploads, _ = service({**localnet, "server_wallet_keys": [key]}, http, chain=chain, per_wallet=3,
                                 concurrency=10, batch=4 if index else 1,
                                 gas_leases=GasLeaseStore(client, ttl_seconds=60))
            sidecars.append((uploads, chain))
        owner = new_owner()
        results = await asyncio.gather(*(uploads.upload(os.urandom(120), **upload_arguments(localnet, owner))
                                         for uploads, _ in sidecars for _ in range(10)))
        assert {result.transfer_status for result in results} == {"ok"} and len(results) == 20
        assert shared.rejected == 0 and shared.overlaps == 0
        assert max(shared.paid.values()) == 1  # no coin version paid twice
        assert all(chain.calls["execute_transaction"] > 0 for _, chain in sidecars)
        assert len(await sidecars[0][1].inner.owned_blobs(owner, localnet["walrus_package_id"])) == 20
        for uploads, chain in sidecars:
            await uploads.aclose()
            await chain.inner.aclose()
        for client in clients:
            await client.aclose()

    async def test_the_next_sidecar_starts_from_the_version_the_last_one_paid_with(self, localnet, http, redis_url):
        client = redis.Redis.from_url(redis_url)
        addresses = await funded_wallet(http, localnet)
        first_chain, second_chain = (CountingChain(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql",
                                                                     http=http)) for _ in range(2))
        first = GasCoinPool(first_chain, addresses, per_wallet=1, leases=GasLeaseStore(client, ttl_seconds=60))
        second = GasCoinPool(second_chain, addresses, per_wallet=1, leases=GasLeaseStore(client, ttl_seconds=60))
        await second.prepare(0)  # loaded before the first pays
        lease = await first.acquire(0)
        newer = ObjectRef(lease.coin.object_id, lease.coin.version + 100, "effects-digest")
        lease.settled = newer  # as effects would report
        first.release(0, lease)
        await first.drain()
        taken = await second.acquire(0)
        assert taken.coin == newer and second_chain.calls["object_ref"] == 0  # from Redis, not from a read
        await hand_back_unused(second, taken)
        await client.aclose()

    async def test_a_killed_holders_coin_waits_out_its_lease_then_is_reread(self, localnet, http, redis_url):
        client = redis.Redis.from_url(redis_url)
        addresses = await funded_wallet(http, localnet)
        chain = CountingChain(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http))
        killed = GasCoinPool(chain, addresses, per_wallet=1, leases=GasLeaseStore(client, ttl_seconds=0.5))
        await killed.acquire(0)  # the instance dies holding it: never released
        survivor_chain = CountingChain(make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http))
        survivor = GasCoinPool(survivor_chain, addresses, per_wallet=1, leases=GasLeaseStore(client, ttl_seconds=0.5),
                               lease_wait_seconds=30)
        lease = await survivor.acquire(0)
        assert survivor_chain.calls["object_ref"] == 1  # in doubt: re-read before paying
        assert lease.coin == await survivor_chain.inner.object_ref(lease.coin.object_id)
        await hand_back_unused(survivor, lease)
        await client.aclose()

    async def test_a_wallet_held_elsewhere_longer_than_the_wait_bound_is_unavailable(self, localnet, http, redis_url):
        client = redis.Redis.from_url(redis_url)
        addresses = await funded_wallet(http, localnet)
        chain = make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http)
        holder = GasCoinPool(chain, addresses, per_wallet=1, leases=GasLeaseStore(client, ttl_seconds=60))
        held = await holder.acquire(0)
        waiting = GasCoinPool(chain, addresses, per_wallet=1, leases=GasLeaseStore(client, ttl_seconds=60),
                              lease_wait_seconds=0.05)
        with pytest.raises(UpstreamUnavailable, match="in use elsewhere"):
            await waiting.acquire(0)
        assert waiting.has_idle(0)  # the coin is back in the local queue for the next try
        await hand_back_unused(holder, held)
        await hand_back_unused(waiting, await waiting.acquire(0))
        await client.aclose()

    async def test_redis_down_fails_closed(self, localnet, http):
        addresses = await funded_wallet(http, localnet)
        chain = make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http)
        unreachable = redis.Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
        pool = GasCoinPool(chain, addresses, per_wallet=1, leases=GasLeaseStore(unreachable, ttl_seconds=60))
        with pytest.raises(UpstreamUnavailable, match="gas leases unavailable"):
            await pool.acquire(0)
        assert pool.has_idle(0)
        await unreachable.aclose()
