"""Which account a delegate key resolved to, remembered in this process for a short TTL (issue #11).

Upstream re-reads the account on chain for every signed request (memwal.md §2). Here a successful resolution
of (delegate key, requested account) is trusted for ``ttl_seconds`` and then re-verified on chain; the
``RevocationFollower`` (relayer/revocations.py) drops an account's entries as soon as the chain reports
``DelegateKeyRemoved`` or ``AccountDeactivated`` for it. So a revoked key or a frozen account is refused at
the latest ``ttl_seconds`` after the relayer's chain reads show the change, and usually within one follower
poll. ``ttl_seconds = 0`` turns the cache off (upstream's every-request check).

A resolution that was in flight when an invalidation arrived is not stored (``generation``): it may have read
the account before the change. Entries are bounded (``max_entries``, least recently used dropped first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from chain.address import is_address, normalize_address
from chain.reader import Account


@dataclass(frozen=True)
class RememberedAccount:
    account: Account
    verified_at: float  # the cache clock's reading when the chain last confirmed the key on this account


def requested_account(account_hint: str) -> str:
    """The cache's form of an ``x-account-id``: normalized, or ``""`` for none."""
    return normalize_address(account_hint) if account_hint and is_address(account_hint) else account_hint


class AccountCache:
    def __init__(self, *, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_seconds < 0 or max_entries < 1:
            raise ValueError(f"invalid account cache ttl={ttl_seconds} max_entries={max_entries}")
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[bytes, str], RememberedAccount] = OrderedDict()
        self._generation = 0

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    @property
    def generation(self) -> int:
        """Read before a resolution starts and pass to ``remember``: it changes with every invalidation."""
        return self._generation

    def __len__(self) -> int:
        return len(self._entries)

    def fresh(self, public_key: bytes, account_hint: str) -> Account | None:
        """The account verified less than ``ttl_seconds`` ago for this key and request, or None."""
        entry = self.remembered(public_key, account_hint)
        if entry is None or self._clock() - entry.verified_at >= self._ttl:
            return None
        return entry.account

    def remembered(self, public_key: bytes, account_hint: str) -> RememberedAccount | None:
        """The entry, fresh or not: a stale one still names the account to re-verify (no database lookup)."""
        key = (bytes(public_key), requested_account(account_hint))
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def remember(self, public_key: bytes, account_hint: str, account: Account, *, generation: int) -> None:
        """Store a resolution verified on chain, unless the cache is off or an invalidation came meanwhile."""
        if not self.enabled or generation != self._generation:
            return
        key = (bytes(public_key), requested_account(account_hint))
        self._entries[key] = RememberedAccount(account, self._clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, public_key: bytes, account_hint: str) -> None:
        self._entries.pop((bytes(public_key), requested_account(account_hint)), None)

    def invalidate_account(self, account_id: str) -> int:
        """Drop every entry resolving to ``account_id``; returns how many."""
        self._generation += 1
        target = normalize_address(account_id)
        stale = [key for key, entry in self._entries.items() if normalize_address(entry.account.account_id) == target]
        for key in stale:
            del self._entries[key]
        return len(stale)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
