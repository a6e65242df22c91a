"""``delegate_key_cache``: which account a delegate public key resolved to, for 24 hours.

A hit only saves the account lookup; the caller still re-verifies the key on chain every request
and calls ``delete`` when that fails (memwal.md §2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relayer.database.pool import Database, affected_rows

DEFAULT_TTL = timedelta(hours=24)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CachedDelegate:
    public_key: str
    account_id: str
    owner: str
    cached_at: datetime
    expires_at: datetime


class DelegateKeyCache:
    def __init__(self, database: Database, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._database = database
        self._clock = clock

    async def get(self, public_key: str) -> CachedDelegate | None:
        """The unexpired entry for ``public_key``, or None."""
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                "SELECT public_key, account_id, owner, cached_at, expires_at FROM delegate_key_cache"
                " WHERE public_key = $1 AND expires_at > $2",
                public_key, self._clock(),
            )
        return None if row is None else CachedDelegate(**dict(row))

    async def put(self, public_key: str, account_id: str, owner: str, *, ttl: timedelta = DEFAULT_TTL) -> CachedDelegate:
        now = self._clock()
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                """
                INSERT INTO delegate_key_cache (public_key, account_id, owner, cached_at, expires_at)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (public_key) DO UPDATE SET account_id = EXCLUDED.account_id,
                    owner = EXCLUDED.owner, cached_at = EXCLUDED.cached_at, expires_at = EXCLUDED.expires_at
                RETURNING public_key, account_id, owner, cached_at, expires_at
                """,
                public_key, account_id, owner, now, now + ttl,
            )
        return CachedDelegate(**dict(row))

    async def delete(self, public_key: str) -> bool:
        async with self._database.connection() as connection:
            status = await connection.execute("DELETE FROM delegate_key_cache WHERE public_key = $1", public_key)
        return affected_rows(status) > 0

    async def evict_expired(self) -> int:
        """Drop expired rows (upstream does this hourly); returns how many."""
        async with self._database.connection() as connection:
            status = await connection.execute("DELETE FROM delegate_key_cache WHERE expires_at <= $1", self._clock())
        return affected_rows(status)
