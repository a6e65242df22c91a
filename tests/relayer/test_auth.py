"""relayer.auth against a real Redis, the real delegate-key cache table and the localnet Sui JSON-RPC server.

Each test walks one step of the check order in ``relayer/auth.py``'s docstring; the chain is a localnet
``World`` served over loopback HTTP and read through ``chain.jsonrpc.JsonRpcChainReader``.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from datetime import timedelta

import httpx
import nacl.signing
import pytest
import pytest_asyncio
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chain.address import sui_address
from chain.jsonrpc import JsonRpcChainReader
from devtools.processes import free_port
from localnet.runner import serving
from localnet.sui_jsonrpc import build_sui_jsonrpc_app
from localnet.world import World
from relayer.account_cache import AccountCache
from relayer.auth import (
    ACCOUNT_MISMATCH,
    EPOCH_KEY,
    FAILURE_FLOOR_SECONDS,
    SIGNED_BEFORE_REPLAY_EPOCH,
    TIMESTAMP_OUT_OF_BOUNDS,
    Authenticator,
    RedisNonceStore,
    canonical_message,
)
from relayer.database.delegate_cache import DelegateKeyCache
from relayer.errors import AuthRejected, AuthUpstreamUnavailable, LegacySdk, RateLimited
from relayer.rate_limit import RateLimiter
from relayer.revocations import RevocationFollower
from tests.e2e.signing import signed_headers

pytestmark = pytest.mark.database

NOW = 1_750_000_000
PATH = "/api/stats"


def new_owner() -> str:
    return sui_address(bytes(nacl.signing.SigningKey(os.urandom(32)).verify_key))


class Chain:
    """A localnet world with the MemWal package and registry, served over HTTP."""

    def __init__(self, world: World, url: str) -> None:
        self.world = world
        self.url = url
        self.registry_id = world.registry_id

    def account_with_key(self, seed: bytes, *, owner: str | None = None) -> str:
        account_id = self.world.create_account(owner or new_owner())
        self.world.add_delegate_key(account_id, bytes(nacl.signing.SigningKey(seed).verify_key), "test")
        return account_id

    def owner_of(self, account_id: str) -> str:
        return self.world.get(account_id).contents.fields["owner"].value


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def chain():
    world = World()
    world.publish_memwal_package()
    world.create_registry()
    async with serving(build_sui_jsonrpc_app(world), name="sui-jsonrpc") as url:
        yield Chain(world, url)


@pytest_asyncio.fixture(loop_scope="session")
async def http():
    async with httpx.AsyncClient() as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


class Harness:
    def __init__(self, authenticator: Authenticator, cache: DelegateKeyCache, sleeps: list[float]) -> None:
        self.authenticator = authenticator
        self.cache = cache
        self.sleeps = sleeps

    async def call(self, headers: dict[str, str], *, body: bytes = b"{}", method: str = "POST", path: str = PATH,
                   weight: int = 1):
        return await self.authenticator.authenticate(method, path, body, headers, weight=weight)

    async def reject(self, headers: dict[str, str], error: type[Exception] = AuthRejected, *, match: str | None = None,
                     **kwargs) -> Exception:
        with pytest.raises(error, match=match) as caught:
            await self.call(headers, **kwargs)
        return caught.value


def make_harness(chain_reader, redis_client, database, *, registry_id: str, nonces=None, default_account_id: str = "",
                 accounts: AccountCache | None = None, limiter: RateLimiter | None = None):
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    cache = DelegateKeyCache(database)
    authenticator = Authenticator(
        chain=chain_reader,
        nonces=nonces or RedisNonceStore(redis_client),
        cache=cache,
        registry_id=registry_id,
        default_account_id=default_account_id,
        accounts=accounts,
        limiter=limiter,
        clock=lambda: float(NOW),
        sleep=sleep,
    )
    return Harness(authenticator, cache, sleeps)


@pytest.fixture
async def harness(chain, http, redis_client, database):
    # The harness's clock is fixed in 2025: a store that has remembered nonces since 1970 never refuses it as
    # signed before its replay epoch (TestReplayEpoch resets the epoch on purpose).
    await redis_client.set(EPOCH_KEY, 0)
    return make_harness(JsonRpcChainReader(chain.url, http=http), redis_client, database, registry_id=chain.registry_id)


def headers_for(seed: bytes, account_id: str, *, body: bytes = b"{}", method: str = "POST", path: str = PATH, **kwargs):
    return signed_headers(seed, method, path, body, account_id=account_id, timestamp=kwargs.pop("timestamp", NOW), **kwargs)


class TestCanonicalMessage:
    def test_no_account_id_ends_with_a_dot(self):
        message = canonical_message("1", "GET", "/x?a=1", b"", "n", "")
        assert message == b"1.GET./x?a=1.e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.n."

    def test_body_hash_and_fields_in_order(self):
        message = canonical_message("7", "POST", "/api/recall", b'{"q":1}', "nonce", "0xabc").decode()
        ts, method, path, digest, nonce, account = message.split(".")
        assert (ts, method, path, nonce, account) == ("7", "POST", "/api/recall", "nonce", "0xabc")
        assert digest == hashlib.sha256(b'{"q":1}').hexdigest()


class TestAuthenticatorHeaders:
    @pytest.mark.parametrize("missing", ["x-public-key", "x-signature", "x-timestamp"])
    async def test_missing_header_is_401_unpadded(self, harness, missing):
        seed = os.urandom(32)
        headers = headers_for(seed, "")
        del headers[missing]
        failure = await harness.reject(headers, match="missing auth headers")
        assert failure.auth_error is None
        assert harness.sleeps == []  # unpadded

    async def test_missing_nonce_is_426(self, harness):
        headers = headers_for(os.urandom(32), "")
        del headers["x-nonce"]
        await harness.reject(headers, LegacySdk, match="missing x-nonce")
        assert harness.sleeps == []

    async def test_missing_nonce_wins_over_bad_timestamp(self, harness):
        headers = headers_for(os.urandom(32), "", timestamp=NOW - 10_000)
        del headers["x-nonce"]
        await harness.reject(headers, LegacySdk, match="missing x-nonce")

    async def test_non_uuid_nonce(self, harness):
        await harness.reject(headers_for(os.urandom(32), "", nonce="not-a-uuid"), match="nonce is not a UUID")
        assert len(harness.sleeps) == 1

    @pytest.mark.parametrize("timestamp", ["12.5", "-5", "1e9", " 17", "abc"])
    async def test_non_integer_timestamp(self, harness, timestamp):
        headers = headers_for(os.urandom(32), "")
        headers["x-timestamp"] = timestamp
        failure = await harness.reject(headers, match="timestamp is not an integer")
        assert failure.auth_error is None

    @pytest.mark.parametrize("offset", [-301, 301, -100_000, 100_000])
    async def test_stale_or_future_timestamp(self, harness, offset):
        failure = await harness.reject(headers_for(os.urandom(32), "", timestamp=NOW + offset), match="drift window")
        assert failure.auth_error == TIMESTAMP_OUT_OF_BOUNDS

    @pytest.mark.parametrize("field,value", [
        ("x-public-key", "zz" * 32), ("x-public-key", "ab" * 31), ("x-signature", "ab" * 63), ("x-signature", "g" * 128),
    ])
    async def test_bad_hex_or_length(self, harness, field, value):
        headers = headers_for(os.urandom(32), "")
        headers[field] = value
        failure = await harness.reject(headers, match="is not (32|64) bytes of hex")
        assert failure.auth_error is None

    async def test_oversized_header(self, harness):
        headers = headers_for(os.urandom(32), "")
        headers["x-account-id"] = "0x" + "a" * 300
        await harness.reject(headers, match="oversized auth header")


class TestAuthenticatorSignature:
    async def test_bad_signature(self, harness, chain):
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        headers = headers_for(seed, account_id)
        signature = bytearray(bytes.fromhex(headers["x-signature"]))
        signature[0] ^= 1
        headers["x-signature"] = signature.hex()
        await harness.reject(headers, match="bad signature")

    async def test_signature_covers_body_path_method_and_account(self, harness, chain):
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        await harness.reject(headers_for(seed, account_id, body=b'{"a":1}'), body=b'{"a":2}', match="bad signature")
        await harness.reject(headers_for(seed, account_id, path="/api/stats?x=1"), path="/api/stats?x=2", match="bad signature")
        await harness.reject(headers_for(seed, account_id, method="GET"), method="POST", match="bad signature")
        tampered = headers_for(seed, account_id)
        tampered["x-account-id"] = chain.account_with_key(os.urandom(32))
        await harness.reject(tampered, match="bad signature")

    async def test_key_of_another_signer(self, harness, chain):
        seed = os.urandom(32)
        headers = headers_for(seed, chain.account_with_key(seed))
        headers["x-public-key"] = bytes(nacl.signing.SigningKey(os.urandom(32)).verify_key).hex()
        await harness.reject(headers, match="bad signature")

    async def test_bad_signature_does_not_burn_the_nonce(self, harness, chain, redis_client):
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        nonce = str(uuid.uuid4())
        forged = headers_for(os.urandom(32), account_id, nonce=nonce)
        forged["x-public-key"] = bytes(nacl.signing.SigningKey(seed).verify_key).hex()
        await harness.reject(forged, match="bad signature")
        assert await redis_client.exists(f"nonce:{nonce}") == 0
        info = await harness.call(headers_for(seed, account_id, nonce=nonce))
        assert info.account_id == account_id

    async def test_accepts_drift_of_exactly_300_seconds(self, harness, chain):
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        for timestamp in (NOW - 300, NOW + 300):
            assert (await harness.call(headers_for(seed, account_id, timestamp=timestamp))).account_id == account_id


class TestAuthenticatorNonces:
    async def test_replay_is_401(self, harness, chain, redis_client):
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        headers = headers_for(seed, account_id)
        await harness.call(headers)
        assert 0 < await redis_client.ttl(f"nonce:{headers['x-nonce']}") <= 600
        await harness.reject(headers, match="replayed nonce")

    async def test_redis_down_is_an_upstream_outage_not_a_pass(self, chain, http, database):
        port = free_port()  # nothing listens here
        broken = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
        try:
            harness = make_harness(JsonRpcChainReader(chain.url, http=http), broken, database, registry_id=chain.registry_id)
            seed = os.urandom(32)
            await harness.reject(headers_for(seed, chain.account_with_key(seed)), AuthUpstreamUnavailable,
                                 match="NonceStoreUnavailable")
            assert harness.sleeps == []  # an outage is not padded: the SDK retries it
        finally:
            await broken.aclose()

    async def test_nonce_consumed_before_account_resolution(self, harness, redis_client):
        seed = os.urandom(32)
        headers = headers_for(seed, "")  # a valid signature by a key no account holds
        await harness.reject(headers, match="not registered")
        assert await redis_client.exists(f"nonce:{headers['x-nonce']}") == 1


class TestStrictHeaders:
    @pytest.mark.parametrize("timestamp", ["¹⁷⁵⁰⁰⁰⁰⁰⁰⁰", "١٧٥٠٠٠٠٠٠٠", "1750000000.5", "-1750000000", " 1750000000", "9" * 5000])
    async def test_a_timestamp_of_anything_but_ascii_digits_is_401_without_credentials(self, harness, timestamp):
        # "¹".isdigit() is True and int("¹") raises: that was a 500 for anyone, with no valid key at all.
        headers = {"x-public-key": "00" * 32, "x-signature": "00" * 64, "x-timestamp": timestamp, "x-nonce": str(uuid.uuid4())}
        await harness.reject(headers, match="oversized auth header|not an integer of ASCII digits")

    async def test_the_window_is_inclusive_at_whole_seconds(self, chain, http, redis_client, database):
        # At NOW + 0.9 s, a signature of NOW - 300 is exactly 300 whole seconds old: accepted.
        harness = make_harness(JsonRpcChainReader(chain.url, http=http), redis_client, database, registry_id=chain.registry_id)
        harness.authenticator._clock = lambda: NOW + 0.9
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        assert (await harness.call(headers_for(seed, account_id, timestamp=NOW - 300))).account_id == account_id
        rejected = await harness.reject(headers_for(seed, account_id, timestamp=NOW - 301), match="drift window")
        assert rejected.auth_error == TIMESTAMP_OUT_OF_BOUNDS


class TestReplayEpoch:
    """A nonce store that lost its keys refuses every signature made before it started remembering again."""

    async def test_flushed_store_refuses_a_captured_request(self, harness, chain, redis_client):
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        captured = headers_for(seed, account_id, timestamp=NOW - 10)
        await harness.call(captured)
        await redis_client.flushall()  # the nonce is gone, and with it the epoch
        rejected = await harness.reject(captured, match="replay epoch")
        assert rejected.auth_error == SIGNED_BEFORE_REPLAY_EPOCH
        assert int(await redis_client.get(EPOCH_KEY)) == NOW  # the store remembers from now on
        assert (await harness.call(headers_for(seed, account_id, timestamp=NOW))).account_id == account_id

    async def test_an_epoch_started_at_boot_accepts_what_is_signed_after_it_and_never_moves_an_existing_one(
        self, harness, chain, redis_client
    ):
        await redis_client.delete(EPOCH_KEY)
        store = RedisNonceStore(redis_client)
        await store.start_epoch(NOW - 5.5)
        assert int(await redis_client.get(EPOCH_KEY)) == NOW - 6  # whole seconds, as timestamps are
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        # Signed after boot but before the first request reached the store: accepted (the store's first use
        # would otherwise have started the epoch at NOW and refused it).
        assert (await harness.call(headers_for(seed, account_id, timestamp=NOW - 3))).account_id == account_id
        await store.start_epoch(NOW + 100)  # a restarted relayer does not move the epoch of a store that has one
        assert int(await redis_client.get(EPOCH_KEY)) == NOW - 6
        rejected = await harness.reject(headers_for(seed, account_id, timestamp=NOW - 7), match="replay epoch")
        assert rejected.auth_error == SIGNED_BEFORE_REPLAY_EPOCH

    async def test_a_store_that_kept_its_epoch_still_knows_its_nonces(self, harness, chain, redis_client):
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        headers = headers_for(seed, account_id, timestamp=NOW - 200)
        await harness.call(headers)
        await harness.reject(headers, match="replayed nonce")


class TestAuthenticatorResolution:
    async def test_unknown_key_registry_scan_is_401(self, harness):
        seed = os.urandom(32)
        await harness.reject(headers_for(seed, ""), match="delegate key is not registered on an active account")

    async def test_hint_is_authoritative(self, harness, chain):
        seed = os.urandom(32)
        chain.account_with_key(seed)
        other = chain.account_with_key(os.urandom(32))
        rejected = await harness.reject(headers_for(seed, other), match="not a delegate of the x-account-id")  # no scan
        assert rejected.auth_error == ACCOUNT_MISMATCH

    async def test_malformed_or_missing_hint(self, harness, chain):
        seed = os.urandom(32)
        chain.account_with_key(seed)
        for hint in ("not-an-address", "0x" + "ab" * 32):
            rejected = await harness.reject(headers_for(seed, hint), match="not a delegate of the x-account-id")
            assert rejected.auth_error == ACCOUNT_MISMATCH

    async def test_registry_scan_finds_and_caches(self, harness, chain):
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        info = await harness.call(headers_for(seed, ""))
        assert (info.account_id, info.owner) == (account_id, chain.owner_of(account_id))
        cached = await harness.cache.get(info.public_key_hex)
        assert (cached.account_id, cached.owner) == (account_id, info.owner)

    async def test_default_account_id_used_without_hint(self, chain, http, redis_client, database):
        seed = os.urandom(32)
        chain.account_with_key(seed)  # found by a scan, but the default id is authoritative
        default = chain.account_with_key(os.urandom(32))
        harness = make_harness(JsonRpcChainReader(chain.url, http=http), redis_client, database,
                               registry_id=chain.registry_id, default_account_id=default)
        await harness.reject(headers_for(seed, ""), match="not registered")

    async def test_hint_beats_cache(self, harness, chain):
        # Upstream serves the cached account whatever x-account-id says; we act as the account the client named.
        seed = os.urandom(32)
        first = chain.account_with_key(seed)
        second = chain.account_with_key(seed)
        public_key_hex = bytes(nacl.signing.SigningKey(seed).verify_key).hex()
        await harness.cache.put(public_key_hex, first, chain.owner_of(first), ttl=timedelta(hours=1))
        assert (await harness.call(headers_for(seed, second))).account_id == second
        assert (await harness.call(headers_for(seed, first))).account_id == first
        assert (await harness.call(headers_for(seed, ""))).account_id == first  # no hint: the cache

    async def test_hint_naming_an_account_the_key_is_not_on_is_a_distinct_401(self, harness, chain):
        seed = os.urandom(32)
        mine = chain.account_with_key(seed)
        theirs = chain.account_with_key(os.urandom(32))
        assert (await harness.call(headers_for(seed, mine))).account_id == mine  # cached now
        rejected = await harness.reject(headers_for(seed, theirs), match="not a delegate of the x-account-id")
        assert rejected.auth_error == ACCOUNT_MISMATCH
        assert (await harness.call(headers_for(seed, mine))).account_id == mine

    async def test_revoked_key_is_401_and_cache_row_deleted(self, harness, chain):
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        info = await harness.call(headers_for(seed, account_id))
        assert await harness.cache.get(info.public_key_hex) is not None
        chain.world.remove_delegate_key(account_id, info.public_key)
        await harness.reject(headers_for(seed, account_id), match="not a delegate of the x-account-id")
        assert await harness.cache.get(info.public_key_hex) is None

    async def test_deactivated_account_is_401_and_cache_row_deleted(self, harness, chain):
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        info = await harness.call(headers_for(seed, ""))
        chain.world.set_active(account_id, False)
        await harness.reject(headers_for(seed, ""), match="not registered")
        await harness.reject(headers_for(seed, account_id), match="not a delegate of the x-account-id")
        assert await harness.cache.get(info.public_key_hex) is None

    async def test_stale_cache_row_falls_through_to_hint(self, harness, chain):
        seed = os.urandom(32)
        old = chain.account_with_key(seed)
        info = await harness.call(headers_for(seed, old))
        chain.world.remove_delegate_key(old, info.public_key)
        new = chain.account_with_key(seed)
        assert (await harness.call(headers_for(seed, new))).account_id == new
        assert (await harness.cache.get(info.public_key_hex)).account_id == new

    async def test_chain_unavailable_is_503(self, chain, http, redis_client, database):
        unreachable = JsonRpcChainReader(f"http://127.0.0.1:{free_port()}", http=http)
        harness = make_harness(unreachable, redis_client, database, registry_id=chain.registry_id)
        seed = os.urandom(32)
        await harness.reject(headers_for(seed, chain.account_with_key(seed)), AuthUpstreamUnavailable, match="ChainUnavailable")
        assert harness.sleeps == []


class TestAuthenticatorPadding:
    async def test_failures_after_the_nonce_check_are_padded_to_the_floor(self, harness, chain):
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        bad = headers_for(seed, account_id)
        bad["x-signature"] = "00" * 64
        started = time.monotonic()
        await harness.reject(bad, match="bad signature")
        elapsed = time.monotonic() - started
        [slept] = harness.sleeps
        assert 0 < slept <= FAILURE_FLOOR_SECONDS
        assert elapsed + slept >= FAILURE_FLOOR_SECONDS - 0.005

    async def test_success_is_not_padded(self, harness, chain):
        seed = os.urandom(32)
        await harness.call(headers_for(seed, chain.account_with_key(seed)))
        assert harness.sleeps == []

    async def test_real_sleep_reaches_the_floor(self, chain, http, redis_client, database):
        authenticator = Authenticator(
            chain=JsonRpcChainReader(chain.url, http=http), nonces=RedisNonceStore(redis_client),
            cache=DelegateKeyCache(database), registry_id=chain.registry_id, clock=lambda: float(NOW),
        )
        started = time.monotonic()
        with pytest.raises(AuthRejected, match="nonce is not a UUID"):
            await authenticator.authenticate("POST", PATH, b"{}", headers_for(os.urandom(32), "", nonce="x"))
        assert time.monotonic() - started >= FAILURE_FLOOR_SECONDS



class CountingChain:
    """The real reader, counting account reads; ``during_read`` runs inside each read (a race on purpose)."""

    def __init__(self, reader: JsonRpcChainReader) -> None:
        self._reader = reader
        self.account_reads = 0
        self.during_read = lambda: None

    async def get_account(self, account_id: str):
        self.account_reads += 1
        account = await self._reader.get_account(account_id)
        self.during_read()
        return account

    def __getattr__(self, name: str):
        return getattr(self._reader, name)


class MonotonicClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class TestAccountCacheInAuthentication:
    """Revocation delay: a removed key is refused within the bound (the TTL), or as soon as the event is read."""

    @pytest.fixture
    def clock(self):
        return MonotonicClock()

    @pytest.fixture
    def counting(self, chain, http):
        return CountingChain(JsonRpcChainReader(chain.url, http=http))

    def cached_harness(self, counting, redis_client, database, chain, clock, *, ttl: float):
        accounts = AccountCache(ttl_seconds=ttl, max_entries=100, clock=clock)
        return accounts, make_harness(counting, redis_client, database, registry_id=chain.registry_id, accounts=accounts)

    async def test_a_fresh_resolution_reads_neither_chain_nor_database(self, counting, redis_client, database, chain, clock):
        _, harness = self.cached_harness(counting, redis_client, database, chain, clock, ttl=10)
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        await harness.call(headers_for(seed, account_id))
        reads = counting.account_reads
        async with database.connection() as connection:
            await connection.execute("DELETE FROM delegate_key_cache")  # a database read would now miss and rescan
        info = await harness.call(headers_for(seed, account_id))
        assert info.account_id == account_id and counting.account_reads == reads

    async def test_ttl_zero_reads_the_chain_for_every_request(self, counting, redis_client, database, chain, clock):
        _, harness = self.cached_harness(counting, redis_client, database, chain, clock, ttl=0)
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        await harness.call(headers_for(seed, account_id))
        reads = counting.account_reads
        await harness.call(headers_for(seed, account_id))
        assert counting.account_reads == reads + 1

    async def test_without_an_event_a_removed_key_is_refused_once_the_ttl_has_passed(
        self, counting, redis_client, database, chain, clock
    ):
        _, harness = self.cached_harness(counting, redis_client, database, chain, clock, ttl=10)
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        await harness.call(headers_for(seed, account_id))
        chain.world.remove_delegate_key(account_id, bytes(nacl.signing.SigningKey(seed).verify_key))
        clock.now += 9.999
        await harness.call(headers_for(seed, account_id))  # inside the documented delay: still served
        clock.now += 0.001
        await harness.reject(headers_for(seed, account_id), match="not a delegate")

    async def test_an_expired_entry_is_reverified_on_chain_without_the_database(
        self, counting, redis_client, database, chain, clock
    ):
        _, harness = self.cached_harness(counting, redis_client, database, chain, clock, ttl=10)
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        await harness.call(headers_for(seed, ""))  # no hint: found by the registry scan, cached in both places
        async with database.connection() as connection:
            await connection.execute("DELETE FROM delegate_key_cache")
        clock.now += 10
        reads = counting.account_reads
        info = await harness.call(headers_for(seed, ""))
        assert info.account_id == account_id and counting.account_reads == reads + 1
        # The database path would have scanned the registry and written the row again.
        assert await harness.cache.get(bytes(nacl.signing.SigningKey(seed).verify_key).hex()) is None

    @pytest.mark.parametrize("revoke", ["remove key", "deactivate"])
    async def test_the_follower_drops_the_account_when_the_event_is_read(
        self, counting, redis_client, database, chain, clock, revoke
    ):
        accounts, harness = self.cached_harness(counting, redis_client, database, chain, clock, ttl=3600)
        follower = RevocationFollower(counting, chain.world.packages["memwal"], accounts, poll_seconds=1)
        await follower.poll_once()  # the history before this test
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        await harness.call(headers_for(seed, account_id))
        if revoke == "remove key":
            chain.world.remove_delegate_key(account_id, bytes(nacl.signing.SigningKey(seed).verify_key))
        else:
            chain.world.set_active(account_id, False)
        await harness.call(headers_for(seed, account_id))  # the event is not read yet: the cached window
        assert await follower.poll_once() == 1
        await harness.reject(headers_for(seed, account_id), match="not a delegate")

    async def test_a_resolution_racing_an_invalidation_is_not_cached(self, counting, redis_client, database, chain, clock):
        accounts, harness = self.cached_harness(counting, redis_client, database, chain, clock, ttl=3600)
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        counting.during_read = lambda: accounts.invalidate_account(account_id)  # the event lands mid-read
        await harness.call(headers_for(seed, account_id))
        counting.during_read = lambda: None
        assert accounts.remembered(bytes(nacl.signing.SigningKey(seed).verify_key), account_id) is None


async def script_calls(redis_client) -> int:
    stats = await redis_client.info("commandstats")
    return sum(int(value["calls"]) for name, value in stats.items() if name in ("cmdstat_evalsha", "cmdstat_eval"))


async def rate_entries(redis_client, public_key_hex: str, owner: str) -> list[int]:
    return [await redis_client.zcard(key) for key in (f"rate:dk:{public_key_hex}", f"rate:{owner}", f"rate:hr:{owner}")]


class TestNonceAndRateLimitInOneRoundTrip:
    """With the account cached, the nonce and the three rate-limit layers are one Redis script, same semantics."""

    @pytest.fixture
    def admitting(self, chain, http, redis_client, database):
        async def build(*, delegate_per_minute: int = 30) -> Harness:
            await redis_client.set(EPOCH_KEY, 0)
            limiter = RateLimiter(redis_client, per_minute=60, per_hour=500, delegate_per_minute=delegate_per_minute,
                                  clock=lambda: float(NOW))
            return make_harness(JsonRpcChainReader(chain.url, http=http), redis_client, database,
                                registry_id=chain.registry_id, accounts=AccountCache(ttl_seconds=3600, max_entries=100),
                                limiter=limiter)
        return build

    async def signed_in(self, harness, chain) -> tuple[bytes, str]:
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        await harness.call(headers_for(seed, account_id))  # resolves and caches: the next call takes the one-script path
        return seed, account_id

    async def test_a_cached_account_costs_one_script_call_and_a_resolution_two(self, admitting, chain, redis_client):
        harness = await admitting()
        warm_seed, warm_account = await self.signed_in(harness, chain)
        await harness.call(headers_for(warm_seed, warm_account))  # the server has loaded both paths' scripts now
        seed = os.urandom(32)
        account_id = chain.account_with_key(seed)
        before = await script_calls(redis_client)
        await harness.call(headers_for(seed, account_id))
        resolved = await script_calls(redis_client)
        await harness.call(headers_for(seed, account_id))
        assert (resolved - before, await script_calls(redis_client) - resolved) == (2, 1)

    async def test_charges_every_layer_like_a_separate_check(self, admitting, chain, redis_client):
        harness = await admitting()
        seed, account_id = await self.signed_in(harness, chain)
        info = await harness.call(headers_for(seed, account_id), weight=5)
        assert await rate_entries(redis_client, info.public_key_hex, info.owner) == [6, 6, 6]

    async def test_a_replay_is_refused_and_charges_nothing(self, admitting, chain, redis_client):
        harness = await admitting()
        seed, account_id = await self.signed_in(harness, chain)
        headers = headers_for(seed, account_id)
        info = await harness.call(headers)
        await harness.reject(headers, match="replayed nonce")
        assert await rate_entries(redis_client, info.public_key_hex, info.owner) == [2, 2, 2]
        assert 0 < await redis_client.ttl(f"nonce:{headers['x-nonce']}") <= 600

    async def test_a_denial_names_the_layer_records_nothing_and_still_burns_the_nonce(self, admitting, chain, redis_client):
        harness = await admitting(delegate_per_minute=3)
        seed, account_id = await self.signed_in(harness, chain)
        headers = headers_for(seed, account_id)
        with pytest.raises(RateLimited) as denied:
            await harness.call(headers, weight=3)
        assert denied.value.layer == "delegate_key"
        owner = chain.owner_of(account_id)
        assert await rate_entries(redis_client, bytes(nacl.signing.SigningKey(seed).verify_key).hex(), owner) == [1, 1, 1]
        await harness.reject(headers, match="replayed nonce")  # as with consume() then check(): the nonce is spent

    async def test_a_flushed_store_refuses_a_captured_request_on_this_path_too(self, admitting, chain, redis_client):
        harness = await admitting()
        seed, account_id = await self.signed_in(harness, chain)
        captured = headers_for(seed, account_id, timestamp=NOW - 10)
        await harness.call(captured)
        await redis_client.flushall()
        before = await script_calls(redis_client)
        rejected = await harness.reject(captured, match="replay epoch")
        assert rejected.auth_error == SIGNED_BEFORE_REPLAY_EPOCH and await script_calls(redis_client) - before == 1
        assert await redis_client.zcard(f"rate:dk:{captured['x-public-key']}") == 0
