"""sidecar.walrus.WalrusClient against the localnet publisher and two aggregators with injected faults."""

from __future__ import annotations

import os
import time

import pytest
import pytest_asyncio
import redis.asyncio as redis

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

    async def test_publish_twice_is_already_certified(self, localnet, http):
        walrus = client(localnet, http)
        data = os.urandom(64)
        first = await walrus.publish(data, epochs=1, send_object_to=WALLET)
        second = await walrus.publish(data, epochs=1, send_object_to=WALLET)
        assert (first.already_certified, second.already_certified) == (False, True)
        assert first.blob_id == second.blob_id and second.object_id is None
