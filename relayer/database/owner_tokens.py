"""Owner bearer tokens: issued, looked up and revoked by their SHA-256; the token itself is never stored.

A token is 256 random bits (``secrets.token_urlsafe(32)``) behind a ``mwot_`` prefix, so a leaked one is easy
to recognise in a scan. Lookups go by digest (an index probe); the digest found is compared to the one
computed in constant time before it counts. Expired and revoked rows are refused and pruned on issue.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relayer.database.pool import Database, affected_rows

TOKEN_PREFIX = "mwot_"  # noqa: S105 (a public marker, not a secret)
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128  # a longer bearer value is refused before it is hashed
PRUNE_AFTER = timedelta(days=1)  # expired or revoked rows stay this long (an operator can still see them)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, to the caller that asked for it
    token_id: str
    expires_at: datetime
    permissions: tuple[str, ...]


@dataclass(frozen=True)
class OwnerGrant:
    """What a valid token lets its bearer do."""

    token_id: str
    owner: str
    account_id: str
    permissions: tuple[str, ...]
    expires_at: datetime


class OwnerTokenStore:
    def __init__(
        self, database: Database, *, clock: Callable[[], datetime] = _utc_now,
        random_token: Callable[[], str] = lambda: secrets.token_urlsafe(TOKEN_BYTES),
    ) -> None:
        self._database = database
        self._clock = clock
        self._random_token = random_token

    async def issue(self, owner: str, account_id: str, permissions: Sequence[str], ttl: timedelta) -> IssuedToken:
        now = self._clock()
        token = TOKEN_PREFIX + self._random_token()
        issued = IssuedToken(token, str(uuid.uuid4()), now + ttl, tuple(permissions))
        async with self._database.transaction() as connection:
            await connection.execute(
                "DELETE FROM owner_tokens WHERE expires_at < $1 OR revoked_at < $1", now - PRUNE_AFTER
            )
            await connection.execute(
                "INSERT INTO owner_tokens (id, token_hash, owner, account_id, permissions, created_at, expires_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                issued.token_id, token_digest(token), owner, account_id, list(issued.permissions), now, issued.expires_at,
            )
        return issued

    async def grant(self, token: str) -> OwnerGrant | None:
        """The grant of a live token; None for an unknown, expired or revoked one (all look alike to callers)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
            return None
        digest = token_digest(token)
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                "SELECT id, token_hash, owner, account_id, permissions, expires_at FROM owner_tokens"
                " WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
                digest, self._clock(),
            )
        if row is None or not hmac.compare_digest(bytes(row["token_hash"]), digest):
            return None
        return OwnerGrant(row["id"], row["owner"], row["account_id"], tuple(row["permissions"]), row["expires_at"])

    async def revoke(self, token: str) -> bool:
        """Revoke a live token; False when it is unknown, expired or already revoked."""
        if len(token) > MAX_TOKEN_LENGTH:
            return False
        now = self._clock()
        async with self._database.connection() as connection:
            status = await connection.execute(
                "UPDATE owner_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
                token_digest(token), now,
            )
        return affected_rows(status) == 1
