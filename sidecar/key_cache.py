"""User secret keys the key servers released, kept for the rest of the Seal session that obtained them.

A recall needs the owner's one Seal identity; the key servers answer the same keys to the same session for
as long as it is valid (at most 30 minutes), so asking again on every recall only costs a round trip to
each server. An entry is found only by the exact request the key servers approved:

    (session fingerprint, MemWal account, full id, key servers + weights, threshold)

The fingerprint covers the session's certificate (user address, package, creation time, TTL, the user's
signature) and its public key, which that signature binds: a header only its session-key holder could
present. A different session, a different account or a different server group misses and goes to the key
servers, which decide afresh. Entries end when their session expires (``SessionKey.expires_at_ms``) or when
``max_entries`` pushes out the least recently used. Nothing here leaves the sidecar's memory; keys are never
logged (the cache's ``repr`` shows only its size).

What this allows: a delegate removed on chain keeps opening the memories it already opened with a session it
already holds until that session expires (at most ``MAX_TTL_MIN``); a new session is refused at once.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sealcrypto import SessionKey

ServerGroup = tuple[tuple[str, int], ...]  # (key-server object id, weight), in the ciphertext's order
UserKeys = Mapping[bytes, bytes]  # key-server object id (32 bytes) -> user secret key (48 bytes)


def session_fingerprint(session: SessionKey) -> bytes:
    """SHA-256 over every field the session's certificate carries, length-prefixed so no two sessions collide."""
    digest = hashlib.sha256(b"memwal-sidecar-seal-session-v1")
    fields = (session.address, session.package_id, session.mvr_name or "", str(session.creation_time_ms),
              str(session.ttl_min), session.personal_message_signature)
    for part in (*(field.encode() for field in fields), session.session_public_key):
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    return digest.digest()


@dataclass(frozen=True)
class CacheKey:
    session: bytes  # session_fingerprint()
    account_id: str  # normalized
    full_id: bytes
    servers: ServerGroup
    threshold: int


@dataclass(frozen=True, repr=False)
class _Entry:
    keys: dict[bytes, bytes]
    expires_at_ms: int


class SessionKeyCache:
    """LRU of released user keys, bounded by entry count and by each session's expiry (``clock`` in seconds)."""

    def __init__(self, max_entries: int, *, clock: Callable[[], float] = time.time) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()

    def __repr__(self) -> str:
        return f"SessionKeyCache({len(self._entries)}/{self._max_entries} entries)"

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        return self._max_entries > 0

    def get(self, key: CacheKey) -> dict[bytes, bytes] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at_ms < self._now_ms():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return dict(entry.keys)

    def put(self, key: CacheKey, keys: UserKeys, *, expires_at_ms: int) -> None:
        if not self.enabled or expires_at_ms < self._now_ms():
            return
        self._entries[key] = _Entry(dict(keys), expires_at_ms)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max_entries:
            self._drop_expired()
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def _drop_expired(self) -> None:
        now_ms = self._now_ms()
        for stale in [key for key, entry in self._entries.items() if entry.expires_at_ms < now_ms]:
            del self._entries[stale]

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
