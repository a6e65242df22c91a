"""sidecar.walrus.WalrusClient against the localnet publisher and two aggregators with injected faults."""

from __future__ import annotations

import os
import time

import pytest
import pytest_asyncio
import redis.asyncio as redis

from localnet.runner import serving
from localnet.walrus import BlobStore, build_aggregator_app, build_publisher_app
from sidecar.errors import BadInput
from sidecar.walrus import CACHE_PREFIX, WalrusClient

pytestmark = pytest.mark.database

WALLET = "0x" + "11" * 32


def client(localnet, http, *, cache=None, race_after_ms: int = 50, max_blob_bytes: int = 64 * 1024,
           cache_max_bytes: int = 1024, aggregators=None) -> WalrusClient:
    return WalrusClient(
        http=http, publisher_url=localnet["walrus_publisher_url"],
        aggregator_urls=tuple(aggregators or localnet["walrus_aggregator_urls"]), race_after_ms=race_after_ms,
        timeout_seconds=5.0, max_blob_bytes=max_blob_bytes, cache=cache, cache_ttl_seconds=60 if cache else 0,
        cache_max_bytes=cache_max_bytes,
    )


async def stored(walrus: WalrusClient, size: int = 100) -> tuple[str, bytes]:
    data = os.urandom(size)
    published = await walrus.publish(data, epochs=1, send_object_to=WALLET)
    return published.blob_id, data


@pytest_asyncio.fixture(loop_scope="session")
async def cache(redis_url):
    client_ = redis.Redis.from_url(redis_url)
    yield client_
    await client_.aclose()


class TestWalrusClientRace:
    async def test_lost_on_all_is_not_found(self, localnet, http, faults):
        walrus = client(localnet, http)
        blob_id, _ = await stored(walrus)
        await faults(0, {"loseAllBlobs": True})
        await faults(1, {"lostBlobIds": [blob_id]})
        assert (await walrus.read(blob_id)).status == "not_found"

    async def test_503_and_404_is_error_not_not_found(self, localnet, http, faults):
        walrus = client(localnet, http)
        blob_id, _ = await stored(walrus)
        await faults(0, {"unavailable": True})
        await faults(1, {"lostBlobIds": [blob_id]})
        fetch = await walrus.read(blob_id)
        assert (fetch.status, fetch.data) == ("error", None)
        await faults(0, {"lostBlobIds": [blob_id]})
        await faults(1, {"unavailable": True})
        assert (await walrus.read(blob_id)).status == "error"

    async def test_all_unavailable_is_error(self, localnet, http, faults):
        walrus = client(localnet, http)
        blob_id, _ = await stored(walrus)
        await faults(0, {"unavailable": True})
        await faults(1, {"unavailable": True})
        assert (await walrus.read(blob_id)).status == "error"

    async def test_unreachable_aggregator_is_error(self, localnet, http):
        from devtools.processes import free_port

        walrus = client(localnet, http, aggregators=[f"http://127.0.0.1:{free_port()}"])
        assert (await walrus.read("A" * 43)).status == "error"

    async def test_delayed_first_aggregator_loses_the_race(self, localnet, http, faults):
        walrus = client(localnet, http, race_after_ms=50)
        blob_id, data = await stored(walrus)
        await faults(0, {"delayMs": 3000})
        started = time.monotonic()
        fetch = await walrus.read(blob_id)
        assert (fetch.status, fetch.data) == ("ok", data)
        assert time.monotonic() - started < 1.5

    async def test_delayed_second_aggregator_is_not_waited_for(self, localnet, http, faults):
        walrus = client(localnet, http, race_after_ms=50)
        blob_id, data = await stored(walrus)
        await faults(1, {"delayMs": 3000})
        started = time.monotonic()
        assert (await walrus.read(blob_id)).data == data
        assert time.monotonic() - started < 1.5

    async def test_one_unavailable_still_ok(self, localnet, http, faults):
        walrus = client(localnet, http, race_after_ms=10_000)  # failure launches the next one at once
        blob_id, data = await stored(walrus)
        await faults(0, {"unavailable": True})
        started = time.monotonic()
        assert (await walrus.read(blob_id)).data == data
        assert time.monotonic() - started < 5

    async def test_lost_on_one_still_ok(self, localnet, http, faults):
        walrus = client(localnet, http, race_after_ms=10_000)
        blob_id, data = await stored(walrus)
        await faults(0, {"lostBlobIds": [blob_id]})
        assert (await walrus.read(blob_id)).data == data
        await faults(0, {})
        await faults(1, {"loseAllBlobs": True})
        assert (await walrus.read(blob_id)).data == data

    async def test_read_many_dedups(self, localnet, http):
        walrus = client(localnet, http)
        blob_id, data = await stored(walrus)
        fetched = await walrus.read_many([blob_id, blob_id, "B" * 43])
        assert list(fetched) == [blob_id, "B" * 43]
        assert fetched[blob_id].data == data and fetched["B" * 43].status == "not_found"


class TestWalrusClientCache:
    async def test_cache_hit_avoids_the_network(self, localnet, http, faults, cache):
        walrus = client(localnet, http, cache=cache)
        blob_id, data = await stored(walrus)  # publish warms the cache
        assert await cache.get(CACHE_PREFIX + blob_id) == data
        await faults(0, {"unavailable": True})
        await faults(1, {"unavailable": True})
        assert (await walrus.read(blob_id)).data == data
        assert (await client(localnet, http).read(blob_id)).status == "error"  # without the cache: no answer

    async def test_read_fills_the_cache(self, localnet, http, cache):
        blob_id, data = await stored(client(localnet, http))
        walrus = client(localnet, http, cache=cache)
        assert await cache.get(CACHE_PREFIX + blob_id) is None
        assert (await walrus.read(blob_id)).data == data
        assert await cache.get(CACHE_PREFIX + blob_id) == data

    async def test_large_blobs_are_not_cached(self, localnet, http, cache):
        walrus = client(localnet, http, cache=cache, cache_max_bytes=50)
        blob_id, data = await stored(walrus, size=51)
        assert (await walrus.read(blob_id)).data == data
        assert await cache.get(CACHE_PREFIX + blob_id) is None

    async def test_not_found_is_not_cached(self, localnet, http, cache):
        walrus = client(localnet, http, cache=cache)
        assert (await walrus.read("C" * 43)).status == "not_found"
        assert await cache.get(CACHE_PREFIX + "C" * 43) is None


class TestWalrusClientSizeCaps:
    async def test_publish_over_the_cap(self, localnet, http):
        with pytest.raises(BadInput, match="exceeds 1024"):
            await client(localnet, http, max_blob_bytes=1024).publish(b"x" * 1025, epochs=1, send_object_to=WALLET)

    async def test_read_over_the_cap_is_error(self, localnet, http):
        blob_id, _ = await stored(client(localnet, http), size=4096)
        assert (await client(localnet, http, max_blob_bytes=1024).read(blob_id)).status == "error"

    async def test_a_deletable_blob_sent_away_is_stored_again(self, localnet, http):
        walrus = client(localnet, http)
        data = os.urandom(64)
        first = await walrus.publish(data, epochs=1, send_object_to=WALLET)
        second = await walrus.publish(data, epochs=1, send_object_to=WALLET)
        assert (first.already_certified, second.already_certified) == (False, False)
        assert first.blob_id == second.blob_id and first.object_id != second.object_id

    async def test_already_certified_object_is_kept_apart_from_ours(self, localnet, http):
        data = os.urandom(64)
        kept = (await http.put(f"{localnet['walrus_publisher_url']}/v1/blobs", content=data)).json()
        published = await client(localnet, http).publish(data, epochs=1, send_object_to=WALLET)
        assert published.already_certified and published.object_id is None
        assert published.certified_object_id == kept["newlyCreated"]["blobObject"]["id"]


class TestJustCertified:
    """Aggregators answer 404 for a while after certification; a read retries before calling a blob missing."""

    @pytest_asyncio.fixture(loop_scope="session")
    async def fresh(self, tmp_path, http):
        store = BlobStore(tmp_path / "blobs")
        publisher = build_publisher_app(store, _Chain(), max_blob_bytes=64 * 1024, current_epoch=lambda: 1)
        aggregator = build_aggregator_app(store, name="slow", not_found_after_certification_seconds=0.6)
        async with serving(publisher, name="publisher") as publisher_url, serving(aggregator, name="slow") as aggregator_url:
            yield {"walrus_publisher_url": publisher_url, "walrus_aggregator_urls": [aggregator_url]}

    async def test_a_read_right_after_certification_is_retried(self, fresh, http):
        walrus = WalrusClient(http=http, publisher_url=fresh["walrus_publisher_url"],
                              aggregator_urls=tuple(fresh["walrus_aggregator_urls"]), race_after_ms=50, timeout_seconds=5,
                              max_blob_bytes=64 * 1024, not_found_retry_seconds=3.0)
        blob_id, data = await stored(walrus)
        fetch = await walrus.read(blob_id)
        assert (fetch.status, fetch.data) == ("ok", data)

    async def test_without_retrying_it_looks_missing(self, fresh, http):
        walrus = client(fresh, http)
        blob_id, _ = await stored(walrus)
        assert (await walrus.read(blob_id)).status == "not_found"

    async def test_a_missing_blob_is_reported_after_the_retry_window(self, fresh, http):
        walrus = WalrusClient(http=http, publisher_url=fresh["walrus_publisher_url"],
                              aggregator_urls=tuple(fresh["walrus_aggregator_urls"]), race_after_ms=50, timeout_seconds=5,
                              max_blob_bytes=64 * 1024, not_found_retry_seconds=0.3)
        assert (await walrus.read("D" * 43)).status == "not_found"


class _Chain:
    """The Sui side the publisher needs, for a publisher without a localnet world."""

    def __init__(self):
        self.count = 0

    def create_blob(self, blob_id, size, owner, *, end_epoch, deletable):
        self.count += 1
        return "0x" + f"{self.count:064x}"

    def owned_blob(self, owner, blob_id):
        return None
