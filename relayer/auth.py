"""Delegate-key request authentication (memwal.md §2).

Steps, in the order upstream checks them:
  (1) x-public-key, x-signature, x-timestamp present         else 401 at once
  (2) x-nonce present                                         else 426 (legacy SDK)
  (3) nonce is a UUID, timestamp an integer within ±drift     else 401 (+ x-auth-error for drift)
  (4) hex decoding and lengths of key and signature           else 401
  (5) Ed25519 over "{ts}.{METHOD}.{path_and_query}.{sha256(body)}.{nonce}.{account_id}"  else 401
  (6) consume the nonce in Redis (SET NX EX 600) — only now, so nobody can burn a victim's nonce
      with a bad signature; a replay or a Redis error is 401
  (7) resolve the account: delegate cache → hint/env → registry scan, re-verified on chain every
      time (revocation and deactivation take effect at once); chain unreachable → 503
Every 401 after step (2) is padded to the same minimum duration so timing does not tell which check
failed. Bodies of auth failures are empty, as upstream's.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import nacl.exceptions
import nacl.signing

from chain.errors import ChainError, ChainUnavailable
from chain.reader import Account, ChainReader

logger = logging.getLogger("memwal.auth")

NONCE_TTL_SECONDS = 600
FAILURE_FLOOR_SECONDS = 0.1
TIMESTAMP_OUT_OF_BOUNDS = "ERR_TIMESTAMP_OUT_OF_BOUNDS"
UPSTREAM_UNAVAILABLE = "AUTH_UPSTREAM_UNAVAILABLE"
MAX_HEADER_LENGTH = 256


@dataclass(frozen=True)
class AuthInfo:
    public_key: bytes
    public_key_hex: str
    owner: str
    account_id: str
    seal_session: str | None


class AuthFailure(Exception):
    """Authentication failed; ``status`` is 401, 426 or 503, ``reason`` is logged, never sent."""

    def __init__(self, status: int, reason: str, *, padded: bool = True, auth_error: str | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.padded = padded
        self.auth_error = auth_error


class NonceStore(Protocol):
    async def consume(self, nonce: str, ttl_seconds: int) -> bool:
        """True if the nonce was unused (and is now recorded); False on replay."""


class CachedAccount(Protocol):
    account_id: str
    owner: str


class DelegateCache(Protocol):
    """The ``delegate_key_cache`` table (relayer.database.delegate_cache.DelegateKeyCache)."""

    async def get(self, public_key: str) -> CachedAccount | None: ...
    async def put(self, public_key: str, account_id: str, owner: str, *, ttl: timedelta) -> object: ...
    async def delete(self, public_key: str) -> bool: ...


class RedisNonceStore:
    def __init__(self, redis) -> None:  # redis.asyncio.Redis
        self._redis = redis

    async def consume(self, nonce: str, ttl_seconds: int) -> bool:
        return bool(await self._redis.set(f"nonce:{nonce}", "1", nx=True, ex=ttl_seconds))


def canonical_message(timestamp: str, method: str, path_and_query: str, body: bytes, nonce: str, account_id: str) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{timestamp}.{method}.{path_and_query}.{body_hash}.{nonce}.{account_id}".encode()


def _decode_hex(value: str, length: int, name: str) -> bytes:
    text = value[2:] if value[:2].lower() == "0x" else value
    if len(text) != 2 * length or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise AuthFailure(401, f"{name} is not {length} bytes of hex")
    return bytes.fromhex(text)


class Authenticator:
    def __init__(
        self,
        *,
        chain: ChainReader,
        nonces: NonceStore,
        cache: DelegateCache,
        registry_id: str,
        default_account_id: str = "",
        clock_drift_seconds: int = 300,
        cache_hours: int = 24,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        import asyncio

        self._chain = chain
        self._nonces = nonces
        self._cache = cache
        self._registry_id = registry_id
        self._default_account_id = default_account_id
        self._drift = clock_drift_seconds
        self._cache_hours = cache_hours
        self._clock = clock
        self._sleep = sleep or asyncio.sleep

    async def authenticate(self, method: str, path_and_query: str, body: bytes, headers: Mapping[str, str]) -> AuthInfo:
        started = time.monotonic()
        try:
            return await self._authenticate(method, path_and_query, body, headers)
        except AuthFailure as failure:
            logger.info("auth rejected: %s", failure.reason)
            if failure.padded:
                await self._sleep(max(0.0, FAILURE_FLOOR_SECONDS - (time.monotonic() - started)))
            raise

    async def _authenticate(self, method: str, path_and_query: str, body: bytes, headers: Mapping[str, str]) -> AuthInfo:
        public_key_hex = headers.get("x-public-key", "")
        signature_hex = headers.get("x-signature", "")
        timestamp = headers.get("x-timestamp", "")
        if not public_key_hex or not signature_hex or not timestamp:
            raise AuthFailure(401, "missing auth headers", padded=False)
        nonce = headers.get("x-nonce")
        if not nonce:
            raise AuthFailure(426, "missing x-nonce (legacy SDK)", padded=False)
        account_hint = headers.get("x-account-id", "")
        if any(len(v) > MAX_HEADER_LENGTH for v in (public_key_hex, signature_hex, timestamp, nonce, account_hint)):
            raise AuthFailure(401, "oversized auth header")
        try:
            uuid.UUID(nonce)
        except ValueError:
            raise AuthFailure(401, "nonce is not a UUID") from None
        if not timestamp.isdigit():
            raise AuthFailure(401, "timestamp is not an integer")
        if abs(self._clock() - int(timestamp)) > self._drift:
            raise AuthFailure(401, "timestamp outside the drift window", auth_error=TIMESTAMP_OUT_OF_BOUNDS)
        public_key = _decode_hex(public_key_hex, 32, "public key")
        signature = _decode_hex(signature_hex, 64, "signature")
        message = canonical_message(timestamp, method.upper(), path_and_query, body, nonce, account_hint)
        try:
            nacl.signing.VerifyKey(public_key).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            raise AuthFailure(401, "bad signature") from None
        try:
            fresh = await self._nonces.consume(nonce, NONCE_TTL_SECONDS)
        except Exception as exc:  # noqa: BLE001 -- any Redis failure must reject, never skip replay protection
            raise AuthFailure(401, f"nonce store unavailable: {type(exc).__name__}") from None
        if not fresh:
            raise AuthFailure(401, "replayed nonce")
        account = await self._resolve(public_key, public_key_hex, account_hint)
        return AuthInfo(
            public_key=public_key,
            public_key_hex=public_key_hex,
            owner=account.owner,
            account_id=account.account_id,
            seal_session=headers.get("x-seal-session"),
        )

    async def _resolve(self, public_key: bytes, public_key_hex: str, account_hint: str) -> Account:
        try:
            cached = await self._cache.get(public_key_hex)
            if cached is not None:
                account = await self._verified(cached.account_id, public_key)
                if account is not None:
                    return account
                await self._cache.delete(public_key_hex)
            account_id = account_hint or self._default_account_id
            if account_id:
                # An explicit id is authoritative: no fallback to the registry scan.
                account = await self._verified(account_id, public_key)
            else:
                account = await self._scan_registry(public_key)
            if account is None:
                raise AuthFailure(401, "delegate key is not registered on an active account")
            await self._cache.put(public_key_hex, account.account_id, account.owner, ttl=timedelta(hours=self._cache_hours))
            return account
        except ChainUnavailable as exc:
            raise AuthFailure(503, f"chain unavailable: {exc}", padded=False, auth_error=UPSTREAM_UNAVAILABLE) from None
        except ChainError as exc:
            raise AuthFailure(401, f"chain error: {exc}") from None

    async def _verified(self, account_id: str, public_key: bytes) -> Account | None:
        try:
            account = await self._chain.get_account(account_id)
        except ValueError:
            return None
        if account is None or not account.active:
            return None
        if not any(key.public_key == public_key for key in account.delegate_keys):
            return None
        return account

    async def _scan_registry(self, public_key: bytes) -> Account | None:
        # Unlike upstream, a deactivated unrelated account does not abort the scan.
        async for account_id in self._chain.iter_registry_accounts(self._registry_id):
            account = await self._verified(account_id, public_key)
            if account is not None:
                return account
        return None
