"""Delegate-key request authentication (memwal.md §2).

Steps, in the order upstream checks them:
  (1) x-public-key, x-signature, x-timestamp present         else 401 at once
  (2) x-nonce present                                         else 426 (legacy SDK)
  (3) nonce is a UUID, timestamp ASCII digits within ±drift   else 401 (+ x-auth-error for drift); the
      window is inclusive and measured in whole seconds, as the timestamp is
  (4) hex decoding and lengths of key and signature           else 401
  (5) Ed25519 over "{ts}.{METHOD}.{path_and_query}.{sha256(body)}.{nonce}.{account_id}"  else 401
  (6) consume the nonce in Redis (SET NX EX 600) — only now, so nobody can burn a victim's nonce
      with a bad signature; a replay is 401. The store keeps a replay epoch: the second it began
      remembering. A signature older than that cannot be checked against nonces the store has lost (a
      restart without persistence, a FLUSHALL) and is refused (401, ERR_SIGNED_BEFORE_REPLAY_EPOCH)
  (7) resolve the account: the in-process account cache (relayer/account_cache.py) while its entry is
      younger than AUTH_ACCOUNT_CACHE_TTL_SECS and no DelegateKeyRemoved/AccountDeactivated event dropped it;
      else delegate cache → hint/env → registry scan, verified on chain (TTL 0: on every request, as
      upstream). An x-account-id naming an account the key is not a delegate of is refused (401,
      ERR_ACCOUNT_MISMATCH) — upstream silently serves the key's cached account instead
Then the rate limits (relayer/rate_limit.py): with the account known from the in-process cache, steps (6) and
the limits run as one Redis script (``ADMIT_SCRIPT``; two on a Redis Cluster, where the nonce and the owner's
windows live in different slots), in that order and with the same effects.
Failures raise ``AuthRejected`` (401), ``RateLimited`` (429), ``LegacySdk`` (426) or, when the nonce store, the database or the chain
cannot answer, ``AuthUpstreamUnavailable`` (503, retried by the SDK); relayer/http_errors.py answers them.
Every rejection after step (2) is padded to the same minimum duration so timing does not tell which check
failed.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import nacl.exceptions
import nacl.signing

from chain.address import is_address, normalize_address
from chain.errors import ChainError, ChainUnavailable
from chain.reader import Account, ChainReader
from memwal_common.cache_errors import CACHE_ERRORS
from memwal_common.redis_client import RedisClient, is_cluster
from relayer.account_cache import AccountCache
from relayer.database.errors import DatabaseUnavailable
from relayer.errors import AuthRejected, AuthUpstreamUnavailable, LegacySdk, NonceStoreUnavailable
from relayer.rate_limit import SLIDING_WINDOW_FUNCTION, Denial, RateLimiter

logger = logging.getLogger("memwal.auth")

NONCE_TTL_SECONDS = 600
FAILURE_FLOOR_SECONDS = 0.1
TIMESTAMP_OUT_OF_BOUNDS = "ERR_TIMESTAMP_OUT_OF_BOUNDS"
ACCOUNT_MISMATCH = "ERR_ACCOUNT_MISMATCH"
SIGNED_BEFORE_REPLAY_EPOCH = "ERR_SIGNED_BEFORE_REPLAY_EPOCH"
MAX_HEADER_LENGTH = 256
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")  # ASCII digits only: str.isdigit() also accepts "²" and "١"
_HEX = re.compile(r"[0-9a-fA-F]*")  # ASCII hex digits only


@dataclass(frozen=True)
class AuthInfo:
    public_key: bytes
    public_key_hex: str
    owner: str
    account_id: str
    seal_session: str | None


class NonceOutcome(enum.Enum):
    FRESH = "fresh"  # unused until now, and recorded
    REPLAYED = "replayed"  # seen before
    BEFORE_EPOCH = "before-epoch"  # signed before the store's replay epoch: it cannot tell


class NonceStore(Protocol):
    async def consume(self, nonce: str, ttl_seconds: int, *, signed_at: int, now: float) -> NonceOutcome:
        """Record ``nonce`` unless it was seen before or ``signed_at`` precedes the store's replay epoch.

        Raises ``NonceStoreUnavailable`` when it cannot tell.
        """

    async def consume_and_check(
        self, nonce: str, ttl_seconds: int, *, signed_at: int, now: float, limiter: RateLimiter, public_key_hex: str,
        owner: str, weight: int,
    ) -> tuple[NonceOutcome, Denial | None]:
        """``consume`` and, for a fresh nonce, ``limiter.check`` — atomically, in one round trip."""


class CachedAccount(Protocol):
    @property
    def account_id(self) -> str: ...
    @property
    def owner(self) -> str: ...


class DelegateCache(Protocol):
    """The ``delegate_key_cache`` table (relayer.database.delegate_cache.DelegateKeyCache)."""

    async def get(self, public_key: str) -> CachedAccount | None: ...
    async def put(self, public_key: str, account_id: str, owner: str, *, ttl: timedelta) -> object: ...
    async def delete(self, public_key: str) -> bool: ...


# A Lua function: the nonce key, the epoch key; ttl, the epoch a fresh store starts (this whole second),
# signed_at. Returns 1 fresh, 0 replayed, -1 signed before the epoch. One script, so a flush cannot slip
# between the reads.
CONSUME_NONCE_FUNCTION = """
local function consume_nonce(nonce_key, epoch_key, ttl, fresh_epoch, signed_at)
  local epoch = redis.call('GET', epoch_key)
  if not epoch then
    redis.call('SET', epoch_key, fresh_epoch)
    epoch = fresh_epoch
  end
  if tonumber(signed_at) < tonumber(epoch) then
    return -1
  end
  if redis.call('SET', nonce_key, '1', 'NX', 'EX', tonumber(ttl)) then
    return 1
  end
  return 0
end
"""
CONSUME_NONCE_SCRIPT = CONSUME_NONCE_FUNCTION + "return consume_nonce(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])\n"
# The nonce, then (only for a fresh one) the rate limits: KEYS = nonce, epoch, the limiter's layers; ARGV = the
# nonce's three, then the limiter's. Returns {nonce outcome, allowed, denied layer index}: the order and the
# effects of consume() followed by RateLimiter.check(), in one round trip.
ADMIT_SCRIPT = CONSUME_NONCE_FUNCTION + SLIDING_WINDOW_FUNCTION + """
local nonce = consume_nonce(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
if nonce ~= 1 then
  return {nonce, 0, 0}
end
local verdict = sliding_window(3, 4)
return {1, verdict[1], verdict[2]}
"""
EPOCH_KEY = "nonce-epoch"
# On a Redis Cluster the nonces spread over this many hash tags, each with its own epoch in its slot: a script
# touches one slot, and a master that loses its data resets the epochs of exactly the nonces it lost.
CLUSTER_NONCE_TAGS = 128


class RedisNonceStore:
    """Nonces as ``nonce:<uuid>`` keys with a TTL, plus the store's replay epoch (``nonce-epoch``, no TTL).

    When Redis loses its keys (restart without persistence, FLUSHALL, eviction of the epoch), the epoch is
    missing and is set to the current whole second: every signature made before it is refused, so no request
    captured before the loss can be replayed within the drift window. (Timestamps are whole seconds: a request
    signed in the very second of the loss stays replayable until that second ends.) A relayer starting on a
    store without an epoch starts it at its boot (``start_epoch``), not at the first request. Run Redis with
    persistence (appendonly) so a restart loses neither nonces nor the epoch.

    On a Redis Cluster a nonce lives at ``nonce:{n<tag>}:<uuid>`` next to its tag's epoch
    ``nonce-epoch:{n<tag>}`` (``CLUSTER_NONCE_TAGS`` tags, chosen by the nonce), and the rate limits (tagged by
    owner, relayer/rate_limit.py) run as a second script right after a fresh nonce: the order and effects of
    ``ADMIT_SCRIPT`` in two round trips instead of one.
    """

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._cluster = is_cluster(redis)
        self._script = redis.register_script(CONSUME_NONCE_SCRIPT)
        self._admit = redis.register_script(ADMIT_SCRIPT)

    def keys(self, nonce: str) -> tuple[str, str]:
        """The nonce's key and the key of the epoch it is checked against."""
        if not self._cluster:
            return f"nonce:{nonce}", EPOCH_KEY
        tag = f"{{n{_nonce_tag(nonce)}}}"
        return f"nonce:{tag}:{nonce}", f"{EPOCH_KEY}:{tag}"

    async def start_epoch(self, now: float) -> None:
        """Start remembering at ``now`` unless the store already has an epoch (boot: so requests signed after the
        relayer came up are never refused because the store's first use fell into a later second)."""
        epochs = [f"{EPOCH_KEY}:{{n{tag}}}" for tag in range(CLUSTER_NONCE_TAGS)] if self._cluster else [EPOCH_KEY]
        try:
            for key in epochs:
                await self._redis.set(key, math.floor(now), nx=True)
        except CACHE_ERRORS as exc:  # the first consume sets it instead
            logger.warning("could not start the nonce store's replay epoch: %s", type(exc).__name__)

    async def consume(self, nonce: str, ttl_seconds: int, *, signed_at: int, now: float) -> NonceOutcome:
        try:
            result = await self._script(keys=list(self.keys(nonce)), args=[ttl_seconds, math.floor(now), signed_at])
        except CACHE_ERRORS as exc:
            raise NonceStoreUnavailable(f"nonce store unavailable: {type(exc).__name__}") from None
        return _outcome(result)

    async def consume_and_check(
        self, nonce: str, ttl_seconds: int, *, signed_at: int, now: float, limiter: RateLimiter, public_key_hex: str,
        owner: str, weight: int,
    ) -> tuple[NonceOutcome, Denial | None]:
        if self._cluster:  # the nonce's slot is not the owner's: two scripts, in ADMIT_SCRIPT's order
            outcome = await self.consume(nonce, ttl_seconds, signed_at=signed_at, now=now)
            if outcome is not NonceOutcome.FRESH:
                return outcome, None
            return outcome, await limiter.check(public_key_hex, owner, weight)
        layers, window_args = limiter.check_arguments(public_key_hex, owner, weight)
        keys = [*self.keys(nonce), *(layer.key for layer in layers)]
        try:
            outcome, allowed, index = await self._admit(
                keys=keys, args=[ttl_seconds, math.floor(now), signed_at, *window_args]
            )
        except CACHE_ERRORS as exc:
            raise NonceStoreUnavailable(f"nonce store unavailable: {type(exc).__name__}") from None
        fresh = _outcome(outcome)
        return fresh, (Denial(layers[int(index) - 1]) if fresh is NonceOutcome.FRESH and not allowed else None)


def _nonce_tag(nonce: str) -> int:
    return int.from_bytes(hashlib.sha256(nonce.encode()).digest()[:4], "big") % CLUSTER_NONCE_TAGS


def _outcome(result: object) -> NonceOutcome:
    return {1: NonceOutcome.FRESH, 0: NonceOutcome.REPLAYED}.get(int(str(result)), NonceOutcome.BEFORE_EPOCH)


def canonical_message(timestamp: str, method: str, path_and_query: str, body: bytes, nonce: str, account_id: str) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{timestamp}.{method}.{path_and_query}.{body_hash}.{nonce}.{account_id}".encode()


def _decode_hex(value: str, length: int, name: str) -> bytes:
    text = value[2:] if value[:2].lower() == "0x" else value
    if len(text) != 2 * length or not _HEX.fullmatch(text):
        raise AuthRejected(f"{name} is not {length} bytes of hex")
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
        accounts: AccountCache | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._chain = chain
        self._nonces = nonces
        self._cache = cache
        self._registry_id = registry_id
        self._default_account_id = default_account_id
        self._drift = clock_drift_seconds
        self._cache_hours = cache_hours
        self._accounts = accounts if accounts is not None else AccountCache(ttl_seconds=0, max_entries=1)
        self._limiter = limiter
        self._clock = clock
        self._sleep = sleep

    async def authenticate(
        self, method: str, path_and_query: str, body: bytes, headers: Mapping[str, str], *, weight: int = 1
    ) -> AuthInfo:
        """The caller's identity, with ``weight`` charged to its rate limits (``RateLimited`` when they are spent)."""
        # (1), (2): answered at once, unpadded, as upstream.
        public_key_hex = headers.get("x-public-key", "")
        signature_hex = headers.get("x-signature", "")
        timestamp = headers.get("x-timestamp", "")
        if not public_key_hex or not signature_hex or not timestamp:
            logger.info("auth rejected: missing auth headers")
            raise AuthRejected("missing auth headers")
        nonce = headers.get("x-nonce")
        if not nonce:
            logger.info("auth rejected: missing x-nonce (legacy SDK)")
            raise LegacySdk("missing x-nonce (legacy SDK)")
        started = time.monotonic()
        try:
            return await self._verify(
                method, path_and_query, body, headers, public_key_hex, signature_hex, timestamp, nonce, weight
            )
        except AuthRejected as rejected:
            logger.info("auth rejected: %s", rejected.message)
            await self._sleep(max(0.0, FAILURE_FLOOR_SECONDS - (time.monotonic() - started)))
            raise
        except (NonceStoreUnavailable, DatabaseUnavailable, ChainUnavailable) as exc:
            raise AuthUpstreamUnavailable(f"auth upstream unavailable: {type(exc).__name__}: {exc}") from exc

    async def _verify(
        self, method: str, path_and_query: str, body: bytes, headers: Mapping[str, str],
        public_key_hex: str, signature_hex: str, timestamp: str, nonce: str, weight: int,
    ) -> AuthInfo:
        account_hint = headers.get("x-account-id", "")
        if any(len(v) > MAX_HEADER_LENGTH for v in (public_key_hex, signature_hex, timestamp, nonce, account_hint)):
            raise AuthRejected("oversized auth header")
        # (3)
        try:
            uuid.UUID(nonce)
        except ValueError:
            raise AuthRejected("nonce is not a UUID") from None
        if not _TIMESTAMP.match(timestamp):
            raise AuthRejected("timestamp is not an integer of ASCII digits")
        now = self._clock()
        signed_at = int(timestamp)
        if abs(math.floor(now) - signed_at) > self._drift:
            raise AuthRejected("timestamp outside the drift window", auth_error=TIMESTAMP_OUT_OF_BOUNDS)
        # (4), (5)
        public_key = _decode_hex(public_key_hex, 32, "public key")
        signature = _decode_hex(signature_hex, 64, "signature")
        message = canonical_message(timestamp, method.upper(), path_and_query, body, nonce, account_hint)
        try:
            nacl.signing.VerifyKey(public_key).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            raise AuthRejected("bad signature") from None
        limiter = self._limiter if self._limiter is not None and not self._limiter.disabled else None
        account = self._accounts.fresh(public_key, account_hint) if self._accounts.enabled else None
        if account is not None and limiter is not None:
            # (6) + (7) + the rate limits: the account is known without I/O, so one Redis script does both.
            outcome, denial = await self._nonces.consume_and_check(
                nonce, NONCE_TTL_SECONDS, signed_at=signed_at, now=now, limiter=limiter,
                public_key_hex=public_key_hex, owner=account.owner, weight=weight,
            )
            _refuse_unless_fresh(outcome)
        else:
            # (6) first: a replayed request must not make us read the chain (a registry scan at worst).
            _refuse_unless_fresh(await self._nonces.consume(nonce, NONCE_TTL_SECONDS, signed_at=signed_at, now=now))
            # (7)
            account = await self._resolve(public_key, public_key_hex, account_hint)
            denial = None if limiter is None else await limiter.check(public_key_hex, account.owner, weight)
        if denial is not None:
            raise denial.error()
        return AuthInfo(
            public_key=public_key,
            public_key_hex=public_key_hex,
            owner=account.owner,
            account_id=account.account_id,
            seal_session=headers.get("x-seal-session"),
        )

    async def _resolve(self, public_key: bytes, public_key_hex: str, account_hint: str) -> Account:
        if not self._accounts.enabled:
            return await self._resolve_on_chain(public_key, public_key_hex, account_hint)
        fresh = self._accounts.fresh(public_key, account_hint)
        if fresh is not None:
            return fresh
        generation = self._accounts.generation  # an invalidation from now on voids what this resolution reads
        remembered = self._accounts.remembered(public_key, account_hint)
        account = None
        if remembered is not None:
            # Expired: re-verify the account it named, on chain, without the database's delegate cache.
            account = await self._checked(remembered.account.account_id, public_key)
            if account is None:
                self._accounts.forget(public_key, account_hint)
        if account is None:
            account = await self._resolve_on_chain(public_key, public_key_hex, account_hint)
        self._accounts.remember(public_key, account_hint, account, generation=generation)
        return account

    async def _checked(self, account_id: str, public_key: bytes) -> Account | None:
        try:
            return await self._verified(account_id, public_key)
        except ChainUnavailable:
            raise
        except ChainError as exc:
            raise AuthRejected(f"chain error: {exc}") from None

    async def _resolve_on_chain(self, public_key: bytes, public_key_hex: str, account_hint: str) -> Account:
        try:
            cached = await self._cache.get(public_key_hex)
            # A cached account is used only when the request names no account or names that one: the client's
            # x-account-id is authoritative, and is never silently replaced by the key's cached account.
            if cached is not None and (not account_hint or _same_id(account_hint, cached.account_id)):
                account = await self._verified(cached.account_id, public_key)
                if account is not None:
                    return account
                await self._cache.delete(public_key_hex)
            if account_hint:
                # An explicit id is authoritative: no fallback to the cache or the registry scan.
                account = await self._verified(account_hint, public_key)
                if account is None:
                    raise AuthRejected("the key is not a delegate of the x-account-id account", auth_error=ACCOUNT_MISMATCH)
            elif self._default_account_id:
                account = await self._verified(self._default_account_id, public_key)
            else:
                account = await self._scan_registry(public_key)
            if account is None:
                raise AuthRejected("delegate key is not registered on an active account")
            await self._cache.put(public_key_hex, account.account_id, account.owner, ttl=timedelta(hours=self._cache_hours))
            return account
        except ChainUnavailable:
            raise
        except ChainError as exc:
            raise AuthRejected(f"chain error: {exc}") from None

    async def _verified(self, account_id: str, public_key: bytes) -> Account | None:
        if not is_address(account_id):
            return None
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


def _refuse_unless_fresh(outcome: NonceOutcome) -> None:
    if outcome is NonceOutcome.REPLAYED:
        raise AuthRejected("replayed nonce")
    if outcome is NonceOutcome.BEFORE_EPOCH:
        raise AuthRejected("signed before the nonce store's replay epoch", auth_error=SIGNED_BEFORE_REPLAY_EPOCH)


def _same_id(left: str, right: str) -> bool:
    return is_address(left) and normalize_address(left) == normalize_address(right)
