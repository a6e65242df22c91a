"""Nonces and rate limits on a real 3-master Redis Cluster (tests/conftest.py ``redis_cluster_url``).

Two clients stand for two relayer instances: what one records, the other must see. Every script's keys share
a slot (else the cluster answers CROSSSLOT), and the keys spread over all three masters, so these tests do
cross nodes. The single-node key layout stays what it was (existing nonces and windows keep counting).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import pytest_asyncio
import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from memwal_common.redis_client import fail_fast_redis, is_cluster
from relayer.auth import CLUSTER_NONCE_TAGS, EPOCH_KEY, NonceOutcome, RedisNonceStore
from relayer.rate_limit import RateLimiter

pytestmark = pytest.mark.database

TTL = 600


@pytest_asyncio.fixture(loop_scope="session")
async def instances(redis_cluster_url):
    """Two independent cluster clients: two relayer instances sharing one cluster."""
    clients = [fail_fast_redis(redis_cluster_url, timeout_seconds=2, cluster=True) for _ in range(2)]
    yield clients
    for client in clients:
        await client.aclose()


def identity() -> tuple[str, str]:
    return os.urandom(32).hex(), "0x" + os.urandom(32).hex()


def limiter(client, *, delegate: int = 10, per_minute: int = 100, key_prefix: str = "") -> RateLimiter:
    return RateLimiter(client, per_minute=per_minute, per_hour=1000, delegate_per_minute=delegate, key_prefix=key_prefix)


async def masters_of(client: RedisCluster, keys: list[str]) -> set[str]:
    return {client.get_node_from_key(key).name for key in keys}


class TestClient:
    def test_cluster_setting_makes_a_cluster_client(self, redis_cluster_url, redis_url):
        assert is_cluster(fail_fast_redis(redis_cluster_url, timeout_seconds=2, cluster=True))
        assert not is_cluster(fail_fast_redis(redis_url, timeout_seconds=2))

    async def test_the_cluster_has_three_masters(self, instances):
        await instances[0].initialize()
        assert len(instances[0].get_primaries()) == 3


class TestRateLimitsOnACluster:
    def test_the_limit_keys_share_one_slot_per_owner(self, instances):
        for prefix in ("", "read:", "token:"):
            layers = limiter(instances[0], key_prefix=prefix).layers(*identity())
            assert len({key_slot(layer.key.encode()) for layer in layers}) == 1, [layer.key for layer in layers]

    async def test_owners_spread_over_every_master(self, instances):
        await instances[0].initialize()
        keys = [limiter(instances[0]).layers(*identity())[1].key for _ in range(60)]
        assert len(await masters_of(instances[0], keys)) == 3

    async def test_weight_spent_through_one_instance_counts_on_the_other(self, instances):
        key, owner = identity()
        first, second = limiter(instances[0]), limiter(instances[1])
        assert await first.check(key, owner, 5) is None
        assert await second.check(key, owner, 5) is None  # 10 of 10 spent, half on each
        denial = await first.check(key, owner, 1)
        assert denial is not None and denial.layer.name == "delegate_key"
        denial = await second.check(key, owner, 1)
        assert denial is not None and denial.layer.name == "delegate_key"

    async def test_account_layers_are_shared_across_keys_and_instances(self, instances):
        owner = identity()[1]
        first, second = limiter(instances[0], per_minute=8), limiter(instances[1], per_minute=8)
        assert await first.check(identity()[0], owner, 4) is None
        assert await second.check(identity()[0], owner, 4) is None
        denial = await first.check(identity()[0], owner, 1)  # a third key, the same owner's window
        assert denial is not None and denial.layer.name == "account_burst"

    async def test_a_denial_charges_nothing_on_a_cluster_either(self, instances):
        key, owner = identity()
        first = limiter(instances[0], delegate=5)
        assert await first.check(key, owner, 4) is None
        assert await first.check(key, owner, 3) is not None
        assert await limiter(instances[1], delegate=5).check(key, owner, 1) is None


class TestNoncesOnACluster:
    async def test_a_nonce_used_on_one_instance_is_refused_on_the_other(self, instances):
        first, second = RedisNonceStore(instances[0]), RedisNonceStore(instances[1])
        now = time.time()
        await first.start_epoch(now - 5)
        nonce = str(uuid.uuid4())
        assert await first.consume(nonce, TTL, signed_at=int(now), now=now) is NonceOutcome.FRESH
        assert await second.consume(nonce, TTL, signed_at=int(now), now=now) is NonceOutcome.REPLAYED

    async def test_consume_and_check_keeps_admit_order_across_slots(self, instances):
        first, second = RedisNonceStore(instances[0]), RedisNonceStore(instances[1])
        key, owner = identity()
        now = time.time()
        await first.start_epoch(now - 5)
        nonce = str(uuid.uuid4())
        outcome, denial = await first.consume_and_check(
            nonce, TTL, signed_at=int(now), now=now, limiter=limiter(instances[0], delegate=3), public_key_hex=key,
            owner=owner, weight=3,
        )
        assert (outcome, denial) == (NonceOutcome.FRESH, None)
        # The replay is refused before the limits are looked at: it neither passes nor charges them.
        outcome, denial = await second.consume_and_check(
            nonce, TTL, signed_at=int(now), now=now, limiter=limiter(instances[1], delegate=3), public_key_hex=key,
            owner=owner, weight=3,
        )
        assert (outcome, denial) == (NonceOutcome.REPLAYED, None)
        # A fresh nonce through the other instance meets the window the first one spent.
        outcome, denial = await second.consume_and_check(
            str(uuid.uuid4()), TTL, signed_at=int(now), now=now, limiter=limiter(instances[1], delegate=3),
            public_key_hex=key, owner=owner, weight=1,
        )
        assert outcome is NonceOutcome.FRESH and denial is not None and denial.layer.name == "delegate_key"

    async def test_each_nonce_shares_a_slot_with_its_epoch_and_tags_cover_every_master(self, instances):
        store = RedisNonceStore(instances[0])
        await instances[0].initialize()
        pairs = [store.keys(str(uuid.uuid4())) for _ in range(200)]
        assert all(key_slot(nonce.encode()) == key_slot(epoch.encode()) for nonce, epoch in pairs)
        assert len({epoch for _, epoch in pairs}) > CLUSTER_NONCE_TAGS // 2
        assert len(await masters_of(instances[0], [nonce for nonce, _ in pairs])) == 3

    async def test_start_epoch_starts_every_tag_and_keeps_an_existing_one(self, instances):
        store = RedisNonceStore(instances[0])
        now = time.time()
        await store.start_epoch(now)
        epochs = [f"{EPOCH_KEY}:{{n{tag}}}" for tag in range(CLUSTER_NONCE_TAGS)]
        values = [await instances[1].get(key) for key in epochs]
        assert all(value is not None and int(value) <= int(now) for value in values)
        await store.start_epoch(now + 100)
        assert [await instances[1].get(key) for key in epochs] == values

    async def test_a_master_that_lost_a_tag_refuses_what_was_signed_before(self, instances):
        """The loss of one slot's keys (a master restarted without its data) resets only that tag's epoch."""
        first, second = RedisNonceStore(instances[0]), RedisNonceStore(instances[1])
        now = time.time()
        await first.start_epoch(now - 60)
        signed_at = int(now)  # not before any epoch an earlier test started
        nonce = str(uuid.uuid4())
        nonce_key, epoch_key = first.keys(nonce)
        assert await first.consume(nonce, TTL, signed_at=signed_at, now=now) is NonceOutcome.FRESH
        try:
            await instances[0].delete(nonce_key)
            await instances[0].delete(epoch_key)
            later = now + 2
            assert await second.consume(nonce, TTL, signed_at=signed_at, now=later) is NonceOutcome.BEFORE_EPOCH
            assert await second.consume(str(uuid.uuid4()), TTL, signed_at=int(later), now=later) is NonceOutcome.FRESH
            other = next(n for n in (str(uuid.uuid4()) for _ in range(1000)) if first.keys(n)[1] != epoch_key)
            assert await second.consume(other, TTL, signed_at=signed_at, now=later) is NonceOutcome.FRESH
        finally:
            await instances[0].set(epoch_key, int(now) - 60)  # later tests sign with the real clock


class TestSingleNodeLayoutUnchanged:
    @pytest_asyncio.fixture(loop_scope="session")
    async def plain(self, redis_url):
        client = redis.Redis.from_url(redis_url)
        yield client
        await client.aclose()

    def test_keys_keep_their_names(self, plain):
        key, owner = identity()
        nonce = str(uuid.uuid4())
        assert RedisNonceStore(plain).keys(nonce) == (f"nonce:{nonce}", "nonce-epoch")
        assert [layer.key for layer in limiter(plain, key_prefix="read:").layers(key, owner)] == [
            f"rate:read:dk:{key}", f"rate:read:{owner}", f"rate:read:hr:{owner}",
        ]
