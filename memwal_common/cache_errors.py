"""The exceptions a Redis call raises when the server is down, slow or unreachable.

Callers that treat Redis as a cache (embeddings, blobs) or degrade without it (rate limits) catch exactly
these, so a programming error is never mistaken for an outage.
"""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError

CACHE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
