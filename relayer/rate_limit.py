"""Weighted sliding-window rate limits (memwal.md §3), three layers checked by one atomic Lua script.

When the caller's account is already known (relayer/account_cache.py), relayer/auth.py runs the same Lua
function inside its nonce script: nonce and limits in one Redis round trip.

Layers: delegate key (``rate:dk:<pubkey>``, per minute), account burst (``rate:<owner>``, per minute) and
account sustained (``rate:hr:<owner>``, per hour). Unlike upstream, the script checks every layer before
recording anything, so a denial never charges the earlier layers, and the post-extraction analyze charge
never resets the windows (upstream's analyze bug). If Redis is down the limiter falls back to in-process
token buckets, so limits still hold on one relayer.

On a Redis Cluster (memwal_common.redis_client.is_cluster) the owner is the keys' hash tag
(``rate:dk:{<owner>}:<pubkey>``, ``rate:{<owner>}``, ``rate:hr:{<owner>}``), so the script's three keys share
one slot and every relayer sharing the cluster charges the same windows. A delegate key is thereby budgeted
per (key, owner): the same key registered on two owners' accounts has one window per owner.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from memwal_common.cache_errors import CACHE_ERRORS
from memwal_common.redis_client import is_cluster
from relayer.errors import RateLimited

logger = logging.getLogger("memwal.rate_limit")

ROUTE_WEIGHTS = {
    "/api/analyze": 5,
    "/api/remember": 5,
    "/api/remember/bulk": 10,
    "/api/remember/manual": 3,
    "/api/restore": 3,
    "/api/ask": 2,
    "/api/sessions/append": 3,  # Seal encryption + a Walrus upload + a chain transaction
    "/api/sessions/close": 3,
    "/api/sessions/read": 2,
}

# A Lua function over KEYS[first_key..] (one sorted set per layer) and ARGV[first_arg..]: now_ms, weight, force,
# unique, then (window_ms, limit, ttl_s) per key. Returns {0, layer_index} when a layer would overflow (nothing
# recorded), else {1, 0}. relayer/auth.py runs it in the same script as the nonce check.
SLIDING_WINDOW_FUNCTION = """
local function sliding_window(first_key, first_arg)
  local now = tonumber(ARGV[first_arg])
  local weight = tonumber(ARGV[first_arg + 1])
  local force = ARGV[first_arg + 2] == '1'
  local unique = ARGV[first_arg + 3]
  local layers = #KEYS - first_key + 1
  for i = 1, layers do
    local key = KEYS[first_key + i - 1]
    local base = first_arg + 3 + (i - 1) * 3
    local window = tonumber(ARGV[base + 1])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if not force then
      local limit = tonumber(ARGV[base + 2])
      if redis.call('ZCARD', key) + weight > limit then
        return {0, i}
      end
    end
  end
  for i = 1, layers do
    local key = KEYS[first_key + i - 1]
    local base = first_arg + 3 + (i - 1) * 3
    for j = 0, weight - 1 do
      redis.call('ZADD', key, now + j * 0.001, unique .. ':' .. j)
    end
    redis.call('EXPIRE', key, tonumber(ARGV[base + 3]))
  end
  return {1, 0}
end
"""
SLIDING_WINDOW_SCRIPT = SLIDING_WINDOW_FUNCTION + "return sliding_window(1, 1)\n"


def route_weight(path: str) -> int:
    normalized = unquote(path).rstrip("/") or "/"
    return ROUTE_WEIGHTS.get(normalized, 1)


@dataclass(frozen=True)
class Layer:
    name: str
    key: str
    limit: int
    window_seconds: int
    retry_after_seconds: int

    @property
    def description(self) -> str:
        unit = "hour" if self.window_seconds >= 3600 else "min"
        return f"{self.limit} weighted-requests/{unit}"


@dataclass(frozen=True)
class Denial:
    layer: Layer

    def error(self) -> RateLimited:
        return RateLimited(
            layer=self.layer.name, limit=self.layer.description, retry_after_seconds=self.layer.retry_after_seconds
        )


class _TokenBucket:
    def __init__(self, capacity: int, window_seconds: int, now: float) -> None:
        self.capacity = capacity
        self.rate = capacity / window_seconds
        self.tokens = float(capacity)
        self.updated = now

    def take(self, weight: int, now: float, force: bool) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if not force and self.tokens < weight:
            return False
        self.tokens -= weight
        return True


class RateLimiter:
    def __init__(
        self,
        redis,
        *,
        per_minute: int,
        per_hour: int,
        delegate_per_minute: int,
        disabled: bool = False,
        key_prefix: str = "",  # a separate budget: the owner read API uses "read:"
        clock: Callable[[], float] = time.time,
        on_fallback: Callable[[str], None] | None = None,
    ) -> None:
        self._redis = redis
        self._per_minute = per_minute
        self._per_hour = per_hour
        self._delegate_per_minute = delegate_per_minute
        self._disabled = disabled
        self._key_prefix = key_prefix
        self._clock = clock
        self._on_fallback = on_fallback or (lambda scope: None)
        self._script = redis.register_script(SLIDING_WINDOW_SCRIPT) if redis is not None else None
        self._cluster = is_cluster(redis)
        self._buckets: dict[str, _TokenBucket] = {}

    def layers(self, public_key_hex: str, owner: str) -> list[Layer]:
        prefix = self._key_prefix
        # On a cluster the owner is the hash tag: the script's keys must all live in one slot.
        scope = f"{{{owner}}}" if self._cluster else owner
        delegate = f"rate:{prefix}dk:{scope}:{public_key_hex}" if self._cluster else f"rate:{prefix}dk:{public_key_hex}"
        return [
            Layer("delegate_key", delegate, self._delegate_per_minute, 60, 60),
            Layer("account_burst", f"rate:{prefix}{scope}", self._per_minute, 60, 60),
            Layer("account_sustained", f"rate:{prefix}hr:{scope}", self._per_hour, 3600, 300),
        ]

    async def check(self, public_key_hex: str, owner: str, weight: int) -> Denial | None:
        """Record ``weight`` against every layer, or deny without recording anything."""
        return await self._apply(self.layers(public_key_hex, owner), weight, force=False)

    async def charge(self, public_key_hex: str, owner: str, weight: int) -> None:
        """Record extra weight for work already done (analyze's per-fact charge); never denies."""
        if weight > 0:
            await self._apply(self.layers(public_key_hex, owner), weight, force=True)

    @property
    def disabled(self) -> bool:
        return self._disabled

    def check_arguments(self, public_key_hex: str, owner: str, weight: int) -> tuple[list[Layer], list[int | str]]:
        """The layers (their keys, in order, are the function's KEYS) and ARGV with which ``SLIDING_WINDOW_FUNCTION``
        does what ``check`` does, for a caller that runs it inside its own script."""
        layers = self.layers(public_key_hex, owner)
        return layers, self.window_arguments(layers, weight, force=False, now=self._clock())

    def window_arguments(self, layers: list[Layer], weight: int, *, force: bool, now: float) -> list[int | str]:
        args: list[int | str] = [int(now * 1000), weight, "1" if force else "0", uuid.uuid4().hex]
        for layer in layers:
            args += [layer.window_seconds * 1000, layer.limit, layer.window_seconds + 60]
        return args

    async def _apply(self, layers: list[Layer], weight: int, *, force: bool) -> Denial | None:
        if self._disabled:
            return None
        now = self._clock()
        if self._script is not None:
            args = self.window_arguments(layers, weight, force=force, now=now)
            try:
                allowed, index = await self._script(keys=[layer.key for layer in layers], args=args)
                return None if allowed else Denial(layers[int(index) - 1])
            except CACHE_ERRORS as exc:  # Redis down: degrade to per-process buckets, never to no limit
                logger.warning("rate limiter falling back to memory: %s", type(exc).__name__)
                self._on_fallback("redis")
        return self._apply_in_memory(layers, weight, now, force)

    def _apply_in_memory(self, layers: list[Layer], weight: int, now: float, force: bool) -> Denial | None:
        buckets = [
            self._buckets.setdefault(layer.key, _TokenBucket(layer.limit, layer.window_seconds, now)) for layer in layers
        ]
        if not force:
            for layer, bucket in zip(layers, buckets, strict=True):
                probe = min(bucket.capacity, bucket.tokens + (now - bucket.updated) * bucket.rate)
                if probe < weight:
                    return Denial(layer)
        for bucket in buckets:
            bucket.take(weight, now, force=True)
        return None
