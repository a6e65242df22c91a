"""Fleet-wide gas-coin leases in the shared Redis: one transaction of one instance pays with a coin at a time.

Several relayer instances share one pool of server wallets, so their sidecars share each wallet's gas coins.
Two transactions signed over the same owned-object version conflict: a validator locks the version for the
first it sees, and on Sui two such transactions can equivocate and lock the coin until the epoch ends.
So before a sidecar signs with a coin it takes the coin's lease here, a key that exists only while one
holder has it:

- ``memwal:gas:v1:{<wallet>}:<coin id>`` — the lease: a random token of its holder, ``SET NX PX <ttl>``.
- ``memwal:gas:v1:{<wallet>}:<coin id>:ref`` — a hash: the coin's newest version and digest (from the
  effects of its last transaction, written when the lease is released cleanly) and ``held``, set while a
  lease is out and cleared by a clean release. A new holder that finds ``held`` set takes over from a holder
  that never released (it died, or its transaction's outcome is unknown): the coin is in doubt and is re-read.

Both keys share the wallet as hash tag, so each script runs on one slot of a Redis Cluster. The TTL must
exceed the longest a holder keeps a coin (a re-read, the gas price read and the execution, each bounded by
SIDECAR_HTTP_TIMEOUT_SECS): a lease that expires under a live holder would let a second transaction in.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from chain.reader import ObjectRef
from memwal_common.redis_client import RedisClient

logger = logging.getLogger("memwal.sidecar.gas_leases")

KEY_PREFIX = "memwal:gas:v1:"
REF_TTL_SECONDS = 30 * 24 * 3600  # a coin unused this long is re-read from the chain (reads have caught up)
MAX_DIGEST_CHARS = 128

# KEYS: lease, ref. ARGV: token, ttl ms, ref ttl s. Returns false (held elsewhere) or {version, digest, held}
# as stored before this take (each may be false).
TAKE_SCRIPT = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
local before = redis.call('HMGET', KEYS[2], 'version', 'digest', 'held')
redis.call('HSET', KEYS[2], 'held', ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return before
"""

# KEYS: lease, ref. ARGV: token, version ('' = outcome unknown: leave the coin in doubt), digest, ref ttl s.
# Returns 1 released, 0 the lease was no longer this holder's (it expired; someone else may hold it).
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] ~= '' then
  local known = tonumber(redis.call('HGET', KEYS[2], 'version') or '0')
  if tonumber(ARGV[2]) >= known then
    redis.call('HSET', KEYS[2], 'version', ARGV[2], 'digest', ARGV[3])
  end
  redis.call('HDEL', KEYS[2], 'held')
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
redis.call('DEL', KEYS[1])
return 1
"""


@dataclass(frozen=True)
class TakenCoin:
    """A lease this holder has; ``known`` is the newest reference another holder left, ``in_doubt`` whether the
    previous holder never released (re-read the coin before paying with it)."""

    token: str
    known: ObjectRef | None
    in_doubt: bool


def lease_key(wallet: str, coin_id: str) -> str:
    return f"{KEY_PREFIX}{{{wallet}}}:{coin_id}"


class GasLeaseStore:
    """Take and release gas-coin leases shared by every sidecar on one Redis (or Redis Cluster)."""

    def __init__(self, redis: RedisClient, *, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            raise ValueError("a gas lease needs a positive TTL")
        self._ttl_ms = int(ttl_seconds * 1000)
        self._take = redis.register_script(TAKE_SCRIPT)
        self._release = redis.register_script(RELEASE_SCRIPT)

    async def take(self, wallet: str, coin_id: str) -> TakenCoin | None:
        """The coin's lease, or ``None`` while another holder has it. Redis errors propagate (fail closed)."""
        token = secrets.token_hex(16)
        key = lease_key(wallet, coin_id)
        before = await self._take(keys=[key, key + ":ref"], args=[token, self._ttl_ms, REF_TTL_SECONDS])
        if before is None:
            return None
        version, digest, held = before
        known = None
        if version is not None and digest is not None and len(digest) <= MAX_DIGEST_CHARS:
            try:
                known = ObjectRef(coin_id, int(version), digest.decode() if isinstance(digest, bytes) else str(digest))
            except ValueError:
                known = None
        return TakenCoin(token, known, in_doubt=held is not None)

    async def release(self, wallet: str, coin_id: str, token: str, settled: ObjectRef | None) -> bool:
        """End this holder's lease; ``settled`` is the coin's reference from the transaction's effects (``None``:
        the outcome is unknown, the next holder re-reads). ``False`` if the lease had expired already."""
        key = lease_key(wallet, coin_id)
        version, digest = ("", "") if settled is None else (str(settled.version), settled.digest)
        released = await self._release(keys=[key, key + ":ref"], args=[token, version, digest, REF_TTL_SECONDS])
        if not released:
            logger.warning("the gas lease of coin %s expired while its transaction ran "
                           "(raise SERVER_WALLET_GAS_LEASE_SECS)", coin_id)
        return bool(released)
