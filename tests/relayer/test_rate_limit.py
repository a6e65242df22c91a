"""relayer.rate_limit against a real Redis (and a dead one for the in-memory fallback), with an injected clock."""

from __future__ import annotations

import os

import pytest
import pytest_asyncio
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from devtools.processes import free_port
from relayer.http_errors import answer_for
from relayer.rate_limit import ROUTE_WEIGHTS, RateLimiter, route_weight

START = 1_750_000_000.0


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture(loop_scope="session")
async def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def identity() -> tuple[str, str]:
    """A fresh delegate key and owner, so tests never share sorted sets."""
    return os.urandom(32).hex(), "0x" + os.urandom(32).hex()


def limiter(client, clock: Clock, *, per_minute: int = 60, per_hour: int = 500, delegate: int = 30, **kwargs) -> RateLimiter:
    return RateLimiter(client, per_minute=per_minute, per_hour=per_hour, delegate_per_minute=delegate, clock=clock, **kwargs)


class TestRouteWeight:
    @pytest.mark.parametrize("path,weight", [
        ("/api/analyze", 5), ("/api/remember", 5), ("/api/remember/bulk", 10), ("/api/remember/manual", 3),
        ("/api/restore", 3), ("/api/ask", 2), ("/api/recall", 1), ("/api/stats", 1), ("/api/remember/bulk/status", 1),
        ("/api/remember/some-job-id", 1), ("/health", 1), ("/", 1), ("", 1),
    ])
    def test_weights(self, path, weight):
        assert route_weight(path) == weight

    @pytest.mark.parametrize("path,weight", [
        ("/api/remember/", 5), ("/api/remember/bulk/", 10), ("/api/%72emember", 5), ("/api/remember%2Fbulk", 10),
        ("/api/%61sk/", 2), ("/api/remember//", 5),
    ])
    def test_percent_decoding_and_trailing_slash(self, path, weight):
        assert route_weight(path) == weight

    def test_table_matches_the_spec(self):
        assert ROUTE_WEIGHTS == {"/api/analyze": 5, "/api/remember": 5, "/api/remember/bulk": 10,
                                 "/api/remember/manual": 3, "/api/restore": 3, "/api/ask": 2,
                                 "/api/sessions/append": 3, "/api/sessions/close": 3, "/api/sessions/read": 2}


def answer(denial):
    """What a client receives for ``denial`` (through the one error edge)."""
    mapped = answer_for(denial.error(), trace_id="t", retry_after_seconds=5)
    assert (mapped.status, mapped.headers) == (429, {"Retry-After": str(denial.layer.retry_after_seconds)})
    return mapped


class TestRateLimiterDenials:
    async def test_delegate_layer_body_and_retry_after(self, redis_client):
        key, owner = identity()
        limits = limiter(redis_client, Clock(), delegate=5)
        for _ in range(5):
            assert await limits.check(key, owner, 1) is None
        denial = await limits.check(key, owner, 1)
        assert denial is not None
        assert answer(denial).body == {"error": "Rate limit exceeded", "layer": "delegate_key",
                                 "limit": "5 weighted-requests/min", "retry_after_seconds": 60}

    async def test_account_burst_layer_spans_delegate_keys(self, redis_client):
        _, owner = identity()
        limits = limiter(redis_client, Clock(), per_minute=4, delegate=100)
        assert await limits.check(os.urandom(32).hex(), owner, 3) is None
        denial = await limits.check(os.urandom(32).hex(), owner, 2)
        assert answer(denial).body == {"error": "Rate limit exceeded", "layer": "account_burst",
                                 "limit": "4 weighted-requests/min", "retry_after_seconds": 60}

    async def test_account_sustained_layer(self, redis_client):
        key, owner = identity()
        clock = Clock()
        limits = limiter(redis_client, clock, per_minute=10, per_hour=12, delegate=10)
        assert await limits.check(key, owner, 10) is None
        clock.now += 120  # the minute windows are clear again, the hour is not
        assert await limits.check(key, owner, 2) is None
        denial = await limits.check(key, owner, 1)
        assert answer(denial).body == {"error": "Rate limit exceeded", "layer": "account_sustained",
                                 "limit": "12 weighted-requests/hour", "retry_after_seconds": 300}

    async def test_weight_counts_as_members(self, redis_client):
        key, owner = identity()
        limits = limiter(redis_client, Clock(), delegate=10)
        assert await limits.check(key, owner, 10) is None
        assert await redis_client.zcard(f"rate:dk:{key}") == 10
        assert await redis_client.zcard(f"rate:{owner}") == 10
        assert await redis_client.zcard(f"rate:hr:{owner}") == 10
        assert (await limits.check(key, owner, 1)).layer.name == "delegate_key"

    async def test_weight_above_the_limit_is_denied_outright(self, redis_client):
        key, owner = identity()
        limits = limiter(redis_client, Clock(), delegate=4)
        assert (await limits.check(key, owner, 5)).layer.name == "delegate_key"
        assert await limits.check(key, owner, 4) is None

    async def test_denial_charges_no_layer(self, redis_client):
        key, owner = identity()
        limits = limiter(redis_client, Clock(), per_minute=10, delegate=100)
        assert await limits.check(os.urandom(32).hex(), owner, 8) is None
        denial = await limits.check(key, owner, 5)  # the delegate layer passes, the burst layer denies
        assert denial.layer.name == "account_burst"
        assert await redis_client.zcard(f"rate:dk:{key}") == 0
        assert await redis_client.zcard(f"rate:{owner}") == 8
        assert await redis_client.zcard(f"rate:hr:{owner}") == 8
        assert await limits.check(key, owner, 2) is None  # the denied weight was not recorded anywhere

    async def test_expiry_is_set(self, redis_client):
        key, owner = identity()
        limits = limiter(redis_client, Clock())
        await limits.check(key, owner, 1)
        assert 0 < await redis_client.ttl(f"rate:dk:{key}") <= 120
        assert 120 < await redis_client.ttl(f"rate:hr:{owner}") <= 3660

    async def test_disabled_never_denies_nor_records(self, redis_client):
        key, owner = identity()
        limits = limiter(redis_client, Clock(), delegate=1, disabled=True)
        for _ in range(5):
            assert await limits.check(key, owner, 5) is None
        assert await redis_client.exists(f"rate:dk:{key}") == 0


class TestRateLimiterWindow:
    async def test_window_slides_with_the_clock(self, redis_client):
        key, owner = identity()
        clock = Clock()
        limits = limiter(redis_client, clock, delegate=3)
        for _ in range(3):
            assert await limits.check(key, owner, 1) is None
        clock.now += 30
        assert (await limits.check(key, owner, 1)).layer.name == "delegate_key"
        clock.now = START + 61
        assert await limits.check(key, owner, 3) is None
        assert await limits.check(key, owner, 1) is not None

    async def test_partial_slide_frees_only_old_entries(self, redis_client):
        key, owner = identity()
        clock = Clock()
        limits = limiter(redis_client, clock, delegate=4)
        assert await limits.check(key, owner, 2) is None
        clock.now += 40
        assert await limits.check(key, owner, 2) is None
        clock.now = START + 61  # the first two expired, the last two are 21 s old
        assert await limits.check(key, owner, 2) is None
        assert await limits.check(key, owner, 1) is not None


class TestRateLimiterCharge:
    async def test_charge_never_resets_earlier_entries(self, redis_client):
        # Upstream's analyze charge passes window start = now and wipes the window; ours must add to it.
        key, owner = identity()
        clock = Clock()
        limits = limiter(redis_client, clock, per_minute=100, per_hour=1000, delegate=6)
        assert await limits.check(key, owner, 3) is None
        clock.now += 1
        await limits.charge(key, owner, 2)
        assert await redis_client.zcard(f"rate:dk:{key}") == 5
        assert await redis_client.zcard(f"rate:{owner}") == 5
        assert await redis_client.zcard(f"rate:hr:{owner}") == 5
        clock.now += 1
        assert (await limits.check(key, owner, 2)).layer.name == "delegate_key"
        assert await limits.check(key, owner, 1) is None

    async def test_charge_records_beyond_the_limit(self, redis_client):
        key, owner = identity()
        limits = limiter(redis_client, Clock(), delegate=2)
        await limits.charge(key, owner, 5)
        assert await redis_client.zcard(f"rate:dk:{key}") == 5
        assert (await limits.check(key, owner, 1)).layer.name == "delegate_key"

    async def test_charge_of_zero_is_a_no_op(self, redis_client):
        key, owner = identity()
        limits = limiter(redis_client, Clock())
        await limits.charge(key, owner, 0)
        assert await redis_client.exists(f"rate:dk:{key}") == 0


class TestRateLimiterFallback:
    @pytest_asyncio.fixture(loop_scope="session")
    async def dead_redis(self):
        # No retries: redis-py's default backoff would make every call take seconds (see the report).
        client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
        yield client
        await client.aclose()

    async def test_redis_down_still_limits_in_memory(self, dead_redis):
        fallbacks: list[str] = []
        key, owner = identity()
        clock = Clock()
        limits = limiter(dead_redis, clock, delegate=3, on_fallback=fallbacks.append)
        for _ in range(3):
            assert await limits.check(key, owner, 1) is None
        denial = await limits.check(key, owner, 1)
        assert answer(denial).body["layer"] == "delegate_key"
        assert fallbacks and set(fallbacks) == {"redis"}

    async def test_fallback_refills_over_the_window(self, dead_redis):
        key, owner = identity()
        clock = Clock()
        limits = limiter(dead_redis, clock, delegate=6)
        assert await limits.check(key, owner, 6) is None
        assert await limits.check(key, owner, 1) is not None
        clock.now += 30  # half the window: half the capacity back
        assert await limits.check(key, owner, 3) is None
        assert await limits.check(key, owner, 1) is not None

    async def test_fallback_denial_charges_no_layer(self, dead_redis):
        key, owner = identity()
        limits = limiter(dead_redis, Clock(), per_minute=5, delegate=7)
        assert await limits.check(os.urandom(32).hex(), owner, 4) is None
        assert (await limits.check(key, owner, 3)).layer.name == "account_burst"
        other_owner = "0x" + os.urandom(32).hex()
        assert await limits.check(key, other_owner, 5) is None  # 7 left only if the denied 3 were not taken

    async def test_fallback_charge_does_not_reset(self, dead_redis):
        key, owner = identity()
        limits = limiter(dead_redis, Clock(), delegate=6)
        assert await limits.check(key, owner, 3) is None
        await limits.charge(key, owner, 2)
        assert await limits.check(key, owner, 2) is not None
        assert await limits.check(key, owner, 1) is None
