from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relayer.database.delegate_cache import DelegateKeyCache
from relayer.database.pool import Database

pytestmark = pytest.mark.database

KEY = "ab" * 32
OTHER_KEY = "cd" * 32


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class TestDelegateKeyCache:
    async def test_put_then_get_until_expiry(self, database: Database) -> None:
        clock = Clock()
        cache = DelegateKeyCache(database, clock=clock)
        stored = await cache.put(KEY, "0xaccount", "0xowner")
        assert stored.expires_at == clock.now + timedelta(hours=24)
        assert await cache.get(KEY) == stored
        clock.now += timedelta(hours=24)
        assert await cache.get(KEY) is None

    async def test_put_overwrites_and_refreshes(self, database: Database) -> None:
        clock = Clock()
        cache = DelegateKeyCache(database, clock=clock)
        await cache.put(KEY, "0xold", "0xowner")
        clock.now += timedelta(hours=23)
        await cache.put(KEY, "0xnew", "0xowner", ttl=timedelta(hours=2))
        clock.now += timedelta(hours=1, minutes=59)
        found = await cache.get(KEY)
        assert found is not None and found.account_id == "0xnew"

    async def test_unknown_key_is_a_miss(self, database: Database) -> None:
        assert await DelegateKeyCache(database).get(OTHER_KEY) is None

    async def test_delete_and_evict(self, database: Database) -> None:
        clock = Clock()
        cache = DelegateKeyCache(database, clock=clock)
        await cache.put(KEY, "0xa", "0xowner", ttl=timedelta(minutes=1))
        await cache.put(OTHER_KEY, "0xb", "0xowner", ttl=timedelta(hours=1))
        assert await cache.delete(KEY) is True
        assert await cache.delete(KEY) is False
        await cache.put(KEY, "0xa", "0xowner", ttl=timedelta(minutes=1))
        clock.now += timedelta(minutes=2)
        assert await cache.evict_expired() == 1
        clock.now -= timedelta(minutes=2)
        assert await cache.get(KEY) is None
        assert (await cache.get(OTHER_KEY)) is not None

    async def test_database_default_expiry_is_a_day(self, database: Database) -> None:
        async with database.connection() as connection:
            await connection.execute(
                "INSERT INTO delegate_key_cache (public_key, account_id, owner) VALUES ($1, 'a', 'o')", KEY
            )
            lifetime = await connection.fetchval("SELECT expires_at - cached_at FROM delegate_key_cache")
        assert timedelta(hours=23, minutes=59) < lifetime <= timedelta(hours=24, seconds=1)
