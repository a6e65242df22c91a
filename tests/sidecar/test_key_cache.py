"""sidecar.key_cache: released keys are found only by the exact (session, account, id, servers, threshold)
the key servers approved, live no longer than their session, and are bounded in number."""

from __future__ import annotations

import os

import pytest

from sealcrypto import SessionKey
from sidecar.key_cache import CacheKey, SessionKeyCache, session_fingerprint

PACKAGE = "0x" + "11" * 32
ACCOUNT = "0x" + "aa" * 32
FULL_ID = bytes.fromhex("11" * 32 + "22" * 32)
SERVERS = (("0x" + "01" * 32, 1), ("0x" + "02" * 32, 1))
KEYS = {bytes([1]) * 32: b"\x81" * 48, bytes([2]) * 32: b"\x82" * 48}
NOW_MS = 1_800_000_000_000


class Clock:
    def __init__(self, now_ms: int = NOW_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms / 1000


def session(user_seed: bytes = b"\x07" * 32, *, session_seed: bytes | None = None, ttl_min: int = 10,
            now_ms: int = NOW_MS) -> SessionKey:
    return SessionKey.create(user_seed=user_seed, package_id=PACKAGE, ttl_min=ttl_min, now_ms=now_ms,
                             session_seed=session_seed or os.urandom(32))


def key(of: SessionKey, *, account: str = ACCOUNT, full_id: bytes = FULL_ID, servers=SERVERS, threshold: int = 2) -> CacheKey:
    return CacheKey(session_fingerprint(of), account, full_id, servers, threshold)


class TestLookup:
    def test_the_same_request_hits(self):
        cache, owner = SessionKeyCache(8, clock=Clock()), session()
        cache.put(key(owner), KEYS, expires_at_ms=owner.expires_at_ms)
        assert cache.get(key(owner)) == KEYS

    def test_another_session_of_the_same_user_misses(self):
        cache, first = SessionKeyCache(8, clock=Clock()), session()
        cache.put(key(first), KEYS, expires_at_ms=first.expires_at_ms)
        assert cache.get(key(session())) is None  # same user, same package, same moment: a new session key

    def test_another_user_misses(self):
        cache, owner = SessionKeyCache(8, clock=Clock()), session()
        cache.put(key(owner), KEYS, expires_at_ms=owner.expires_at_ms)
        assert cache.get(key(session(b"\x08" * 32))) is None

    @pytest.mark.parametrize("change", [
        {"account": "0x" + "bb" * 32},
        {"full_id": bytes.fromhex("11" * 32 + "33" * 32)},
        {"servers": SERVERS[:1]},
        {"servers": ((SERVERS[0][0], 2),)},
        {"threshold": 1},
    ])
    def test_any_other_part_of_the_approved_request_misses(self, change):
        cache, owner = SessionKeyCache(8, clock=Clock()), session()
        cache.put(key(owner), KEYS, expires_at_ms=owner.expires_at_ms)
        assert cache.get(key(owner, **change)) is None

    def test_a_returned_entry_cannot_change_the_cache(self):
        cache, owner = SessionKeyCache(8, clock=Clock()), session()
        cache.put(key(owner), KEYS, expires_at_ms=owner.expires_at_ms)
        found = cache.get(key(owner))
        assert found is not None
        found.clear()
        assert cache.get(key(owner)) == KEYS


class TestFingerprint:
    def test_every_certificate_field_counts(self):
        seed = os.urandom(32)
        base = session(session_seed=seed)
        others = [session(session_seed=seed, ttl_min=11), session(session_seed=seed, now_ms=NOW_MS + 1),
                  session(b"\x08" * 32, session_seed=seed), session(session_seed=os.urandom(32))]
        fingerprints = {session_fingerprint(one) for one in [base, *others]}
        assert len(fingerprints) == 5
        assert session_fingerprint(session(session_seed=seed)) == session_fingerprint(base)


class TestExpiry:
    def test_an_entry_ends_with_its_session(self):
        clock, owner = Clock(), session()
        cache = SessionKeyCache(8, clock=clock)
        cache.put(key(owner), KEYS, expires_at_ms=owner.expires_at_ms)
        clock.now_ms = owner.expires_at_ms
        assert cache.get(key(owner)) == KEYS  # the last usable moment
        clock.now_ms = owner.expires_at_ms + 1
        assert cache.get(key(owner)) is None
        assert len(cache) == 0  # dropped, not only hidden

    def test_an_already_expired_session_is_not_stored(self):
        clock, owner = Clock(), session()
        clock.now_ms = owner.expires_at_ms + 1
        cache = SessionKeyCache(8, clock=clock)
        cache.put(key(owner), KEYS, expires_at_ms=owner.expires_at_ms)
        assert len(cache) == 0


class TestBounds:
    def test_the_least_recently_used_entry_goes_first(self):
        cache = SessionKeyCache(2, clock=Clock())
        a, b, c = session(), session(), session()
        cache.put(key(a), KEYS, expires_at_ms=a.expires_at_ms)
        cache.put(key(b), KEYS, expires_at_ms=b.expires_at_ms)
        assert cache.get(key(a)) == KEYS  # a is now the most recent
        cache.put(key(c), KEYS, expires_at_ms=c.expires_at_ms)
        assert len(cache) == 2 and cache.get(key(b)) is None and cache.get(key(a)) == KEYS

    def test_expired_entries_go_before_live_ones(self):
        clock = Clock()
        cache = SessionKeyCache(2, clock=clock)
        short, long, newest = session(ttl_min=1), session(ttl_min=30), session(ttl_min=30)
        cache.put(key(long), KEYS, expires_at_ms=long.expires_at_ms)
        cache.put(key(short), KEYS, expires_at_ms=short.expires_at_ms)
        clock.now_ms = short.expires_at_ms + 1
        cache.put(key(newest), KEYS, expires_at_ms=newest.expires_at_ms)
        assert cache.get(key(long)) == KEYS and cache.get(key(newest)) == KEYS

    def test_zero_entries_turns_the_cache_off(self):
        cache, owner = SessionKeyCache(0, clock=Clock()), session()
        cache.put(key(owner), KEYS, expires_at_ms=owner.expires_at_ms)
        assert not cache.enabled and cache.get(key(owner)) is None

    def test_a_negative_size_is_refused(self):
        with pytest.raises(ValueError, match="max_entries"):
            SessionKeyCache(-1)

    def test_repr_shows_no_key_material(self):
        cache, owner = SessionKeyCache(8, clock=Clock()), session()
        cache.put(key(owner), KEYS, expires_at_ms=owner.expires_at_ms)
        assert repr(cache) == "SessionKeyCache(1/8 entries)"
