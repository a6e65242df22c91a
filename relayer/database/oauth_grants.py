"""MCP's OAuth 2.1 state in PostgreSQL: registered clients, authorization requests and codes, tokens.

Codes and tokens are 256 random bits behind a prefix (``mwoc_`` code, ``mwoa_`` access, ``mwor_`` refresh) and
only their SHA-256 is stored, so a database dump grants nothing; lookups go by digest and the digest found is
compared in constant time. Everything expires; revoking one token of a grant revokes all of the grant's
tokens. Expired rows are pruned when new ones are written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from relayer.database.pool import Database, affected_rows

CODE_PREFIX = "mwoc_"
ACCESS_PREFIX = "mwoa_"
REFRESH_PREFIX = "mwor_"
SECRET_BYTES = 32
MAX_SECRET_LENGTH = 128  # a longer code or token is refused before it is hashed
PRUNE_AFTER = timedelta(days=1)  # expired or revoked rows stay this long


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PendingAuthorization:
    """An /authorize request as the client made it, before or after the owner approved it."""

    request_id: str
    client_id: str
    scopes: tuple[str, ...]
    code_challenge: str
    redirect_uri: str
    redirect_uri_explicit: bool
    state: str | None
    resource: str | None
    expires_at: datetime


@dataclass(frozen=True)
class Grantee:
    """Whom an approval speaks for: the owner's account and the delegate key that signed the approval."""

    owner: str
    account_id: str
    public_key_hex: str


@dataclass(frozen=True)
class ApprovedCode:
    authorization: PendingAuthorization
    grantee: Grantee


@dataclass(frozen=True)
class TokenGrant:
    """What a live access or refresh token stands for."""

    grant_id: str
    client_id: str
    grantee: Grantee
    scopes: tuple[str, ...]
    resource: str | None
    expires_at: datetime


@dataclass(frozen=True)
class IssuedPair:
    access_token: str
    refresh_token: str
    access_expires_at: datetime


class OAuthGrantStore:
    def __init__(
        self, database: Database, *, clock: Callable[[], datetime] = _utc_now,
        random_secret: Callable[[], str] = lambda: secrets.token_urlsafe(SECRET_BYTES),
    ) -> None:
        self._database = database
        self._clock = clock
        self._random_secret = random_secret

    def now(self) -> datetime:
        return self._clock()

    # --- clients ---

    async def client(self, client_id: str) -> dict[str, object] | None:
        if len(client_id) > MAX_SECRET_LENGTH:
            return None
        async with self._database.connection() as connection:
            row = await connection.fetchrow("SELECT information FROM oauth_clients WHERE client_id = $1", client_id)
        return None if row is None else dict(json.loads(row["information"]))

    async def register_client(self, client_id: str, information: dict[str, object]) -> None:
        """Store a client; clients older than a day with no live token are pruned (registration is open)."""
        now = self._clock()
        async with self._database.transaction() as connection:
            await connection.execute(
                "DELETE FROM oauth_clients c WHERE c.created_at < $1 AND NOT EXISTS (SELECT 1 FROM oauth_tokens t"
                " WHERE t.client_id = c.client_id AND t.revoked_at IS NULL AND t.expires_at > $2)",
                now - PRUNE_AFTER, now,
            )
            await connection.execute(
                "INSERT INTO oauth_clients (client_id, information, created_at) VALUES ($1, $2::jsonb, $3)",
                client_id, json.dumps(information), now,
            )

    # --- authorization requests and codes ---

    async def open_authorization(self, pending: PendingAuthorization) -> None:
        now = self._clock()
        async with self._database.transaction() as connection:
            await connection.execute("DELETE FROM oauth_authorizations WHERE expires_at < $1", now - PRUNE_AFTER)
            await connection.execute(
                "INSERT INTO oauth_authorizations (id, client_id, scopes, code_challenge, redirect_uri,"
                " redirect_uri_explicit, state, resource, created_at, expires_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                pending.request_id, pending.client_id, list(pending.scopes), pending.code_challenge, pending.redirect_uri,
                pending.redirect_uri_explicit, pending.state, pending.resource, now, pending.expires_at,
            )

    async def pending(self, request_id: str) -> PendingAuthorization | None:
        """A live request not yet approved; None for an unknown, expired or already approved one."""
        if len(request_id) > MAX_SECRET_LENGTH:
            return None
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                "SELECT * FROM oauth_authorizations WHERE id = $1 AND approved_at IS NULL AND expires_at > $2",
                request_id, self._clock(),
            )
        return None if row is None else _pending(row)

    async def approve(self, request_id: str, grantee: Grantee) -> tuple[PendingAuthorization, str] | None:
        """Approve a live, unapproved request for ``grantee``: its one-time code, or None when there is none."""
        code = CODE_PREFIX + self._random_secret()
        now = self._clock()
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                "UPDATE oauth_authorizations SET code_hash = $2, owner = $3, account_id = $4, public_key_hex = $5,"
                " approved_at = $6 WHERE id = $1 AND approved_at IS NULL AND expires_at > $6 RETURNING *",
                request_id, digest(code), grantee.owner, grantee.account_id, grantee.public_key_hex, now,
            )
        return None if row is None else (_pending(row), code)

    async def code(self, client_id: str, code: str) -> ApprovedCode | None:
        """An approved, unused, live code of ``client_id``."""
        if not code.startswith(CODE_PREFIX) or len(code) > MAX_SECRET_LENGTH:
            return None
        wanted = digest(code)
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                "SELECT * FROM oauth_authorizations WHERE code_hash = $1 AND client_id = $2 AND used_at IS NULL"
                " AND expires_at > $3",
                wanted, client_id, self._clock(),
            )
        if row is None or not hmac.compare_digest(bytes(row["code_hash"]), wanted):
            return None
        return ApprovedCode(_pending(row), _grantee(row))

    async def redeem(self, code: str, ttl_access: timedelta, ttl_refresh: timedelta) -> tuple[IssuedPair, TokenGrant] | None:
        """Use ``code`` once: a fresh grant's tokens; None when it was used meanwhile (a concurrent redeem)."""
        now = self._clock()
        async with self._database.transaction() as connection:
            row = await connection.fetchrow(
                "UPDATE oauth_authorizations SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2"
                " RETURNING *",
                digest(code), now,
            )
            if row is None:
                return None
            grant = _token_grant(row, grant_id=str(uuid.uuid4()), expires_at=now + ttl_access)
            pair = await self._issue(connection, grant, now, ttl_access, ttl_refresh)
        return pair, grant

    # --- tokens ---

    async def token(self, token: str, kind: str) -> TokenGrant | None:
        """The grant of a live ``kind`` token; None for an unknown, expired or revoked one (all look alike)."""
        prefix = ACCESS_PREFIX if kind == "access" else REFRESH_PREFIX
        if not token.startswith(prefix) or len(token) > MAX_SECRET_LENGTH:
            return None
        wanted = digest(token)
        async with self._database.connection() as connection:
            row = await connection.fetchrow(
                "SELECT * FROM oauth_tokens WHERE token_hash = $1 AND kind = $2 AND revoked_at IS NULL AND expires_at > $3",
                wanted, kind, self._clock(),
            )
        if row is None or not hmac.compare_digest(bytes(row["token_hash"]), wanted):
            return None
        return _token_grant(row, grant_id=row["grant_id"], expires_at=row["expires_at"])

    async def rotate(self, refresh_token: str, scopes: Sequence[str], ttl_access: timedelta,
                     ttl_refresh: timedelta) -> IssuedPair | None:
        """Spend ``refresh_token`` (revoking the grant's other live tokens) for a new pair with ``scopes``; None
        when it was spent meanwhile."""
        now = self._clock()
        async with self._database.transaction() as connection:
            row = await connection.fetchrow(
                "UPDATE oauth_tokens SET revoked_at = $2 WHERE token_hash = $1 AND kind = 'refresh' AND revoked_at IS NULL"
                " AND expires_at > $2 RETURNING *",
                digest(refresh_token), now,
            )
            if row is None:
                return None
            await connection.execute(
                "UPDATE oauth_tokens SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL", row["grant_id"], now
            )
            grant = _token_grant(row, grant_id=row["grant_id"], expires_at=now + ttl_access, scopes=scopes)
            return await self._issue(connection, grant, now, ttl_access, ttl_refresh)

    async def revoke(self, token: str) -> bool:
        """Revoke every live token of the grant ``token`` belongs to; False when it is unknown."""
        if len(token) > MAX_SECRET_LENGTH:
            return False
        now = self._clock()
        async with self._database.transaction() as connection:
            grant_id = await connection.fetchval("SELECT grant_id FROM oauth_tokens WHERE token_hash = $1", digest(token))
            if grant_id is None:
                return False
            status = await connection.execute(
                "UPDATE oauth_tokens SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL", grant_id, now
            )
        return affected_rows(status) > 0

    async def _issue(self, connection: asyncpg.Connection, grant: TokenGrant, now: datetime, ttl_access: timedelta,
                     ttl_refresh: timedelta) -> IssuedPair:
        access = ACCESS_PREFIX + self._random_secret()
        refresh = REFRESH_PREFIX + self._random_secret()
        await connection.execute("DELETE FROM oauth_tokens WHERE expires_at < $1 OR revoked_at < $1", now - PRUNE_AFTER)
        for kind, secret, ttl in (("access", access, ttl_access), ("refresh", refresh, ttl_refresh)):
            await connection.execute(
                "INSERT INTO oauth_tokens (token_hash, kind, grant_id, client_id, owner, account_id, public_key_hex, scopes,"
                " resource, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                digest(secret), kind, grant.grant_id, grant.client_id, grant.grantee.owner, grant.grantee.account_id,
                grant.grantee.public_key_hex, list(grant.scopes), grant.resource, now, now + ttl,
            )
        return IssuedPair(access, refresh, now + ttl_access)


def _grantee(row: asyncpg.Record) -> Grantee:
    return Grantee(row["owner"], row["account_id"], row["public_key_hex"])


def _token_grant(row: asyncpg.Record, *, grant_id: str, expires_at: datetime, scopes: Sequence[str] | None = None) -> TokenGrant:
    """A grant from an authorization's or a token's row (both carry the client, the grantee, scopes, resource)."""
    return TokenGrant(grant_id, row["client_id"], _grantee(row), tuple(row["scopes"] if scopes is None else scopes),
                      row["resource"], expires_at)


def _pending(row: asyncpg.Record) -> PendingAuthorization:
    return PendingAuthorization(
        row["id"], row["client_id"], tuple(row["scopes"]), row["code_challenge"], row["redirect_uri"],
        row["redirect_uri_explicit"], row["state"], row["resource"], row["expires_at"],
    )
