"""Redis clients that fail fast: bounded connect and command time, one retry without backoff.

The relayer (nonces, rate limits, caches) and the sidecar (blob cache) treat Redis trouble as an outage to
answer (503) or route around (in-memory limits, a download instead of a cache hit) at once, not to wait out
with backoff on every request.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def fail_fast_redis(url: str, *, timeout_seconds: float) -> Redis:
    return Redis.from_url(
        url, retry=Retry(NoBackoff(), 1), socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds
    )
