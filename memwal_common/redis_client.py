"""Redis clients that fail fast: bounded connect and command time, one retry without backoff.

The relayer (nonces, rate limits, caches) and the sidecar (blob cache) treat Redis trouble as an outage to
answer (503) or route around (in-memory limits, a download instead of a cache hit) at once, not to wait out
with backoff on every request.

With ``cluster`` (REDIS_CLUSTER) the URL names any node of a Redis Cluster: the client learns the slot map
from it and sends each command to the master that owns its keys. Every caller's multi-key operation (the
nonce and rate-limit scripts) names keys that share a hash tag, so it runs on one slot (``is_cluster`` tells
callers which key layout to use).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

RedisClient = Redis | RedisCluster


def fail_fast_redis(url: str, *, timeout_seconds: float, cluster: bool = False) -> RedisClient:
    if cluster:
        return RedisCluster.from_url(
            url, retry=Retry(NoBackoff(), 1), socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds
        )
    return Redis.from_url(
        url, retry=Retry(NoBackoff(), 1), socket_connect_timeout=timeout_seconds, socket_timeout=timeout_seconds
    )


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster, where a script's keys must all hash to one slot."""
    return isinstance(client, RedisCluster)
