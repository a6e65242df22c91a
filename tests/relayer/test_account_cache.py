"""relayer.account_cache: the TTL, invalidation and the generation guard, on an injected clock."""

from __future__ import annotations

import pytest

from chain.reader import Account
from relayer.account_cache import AccountCache

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
ACCOUNT = Account("0x" + "a1" * 32, "0x" + "0a" * 32, True, (), 3)
OTHER_ACCOUNT = Account("0x" + "b2" * 32, "0x" + "0b" * 32, True, (), 4)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache(ttl: float = 10, *, max_entries: int = 100, clock: Clock | None = None) -> AccountCache:
    return AccountCache(ttl_seconds=ttl, max_entries=max_entries, clock=clock or Clock())


class TestConstruction:
    @pytest.mark.parametrize(("ttl", "entries"), [(-1, 10), (10, 0)])
    def test_invalid_bounds_are_refused(self, ttl, entries):
        with pytest.raises(ValueError, match="invalid account cache"):
            AccountCache(ttl_seconds=ttl, max_entries=entries)

    def test_ttl_zero_is_off_and_stores_nothing(self):
        off = cache(0)
        off.remember(KEY, "", ACCOUNT, generation=off.generation)
        assert not off.enabled and len(off) == 0 and off.fresh(KEY, "") is None


class TestTtl:
    def test_fresh_until_the_ttl_has_passed_then_only_remembered(self):
        clock = Clock()
        accounts = cache(10, clock=clock)
        accounts.remember(KEY, "", ACCOUNT, generation=accounts.generation)
        clock.now += 9.999
        assert accounts.fresh(KEY, "") == ACCOUNT
        clock.now += 0.001
        assert accounts.fresh(KEY, "") is None
        remembered = accounts.remembered(KEY, "")
        assert remembered is not None and remembered.account == ACCOUNT  # names the account to re-verify

    def test_requested_account_is_part_of_the_key_and_normalized(self):
        accounts = cache()
        accounts.remember(KEY, "0xA1" + "a1" * 31, ACCOUNT, generation=accounts.generation)
        assert accounts.fresh(KEY, "0x" + "a1" * 32) == ACCOUNT
        assert accounts.fresh(KEY, "") is None and accounts.fresh(OTHER_KEY, "0x" + "a1" * 32) is None


class TestInvalidation:
    def test_invalidating_an_account_drops_every_key_resolved_to_it_and_nothing_else(self):
        accounts = cache()
        accounts.remember(KEY, "", ACCOUNT, generation=accounts.generation)
        accounts.remember(OTHER_KEY, ACCOUNT.account_id, ACCOUNT, generation=accounts.generation)
        accounts.remember(OTHER_KEY, "", OTHER_ACCOUNT, generation=accounts.generation)
        assert accounts.invalidate_account(ACCOUNT.account_id.upper().replace("0X", "0x")) == 2
        assert accounts.remembered(KEY, "") is None and accounts.remembered(OTHER_KEY, ACCOUNT.account_id) is None
        assert accounts.fresh(OTHER_KEY, "") == OTHER_ACCOUNT

    def test_a_resolution_that_started_before_an_invalidation_is_not_stored(self):
        accounts = cache()
        started = accounts.generation
        accounts.invalidate_account(OTHER_ACCOUNT.account_id)  # any invalidation: the read may predate it
        accounts.remember(KEY, "", ACCOUNT, generation=started)
        assert accounts.remembered(KEY, "") is None
        accounts.remember(KEY, "", ACCOUNT, generation=accounts.generation)
        assert accounts.fresh(KEY, "") == ACCOUNT

    def test_clear_drops_all_and_voids_resolutions_in_flight(self):
        accounts = cache()
        started = accounts.generation
        accounts.remember(KEY, "", ACCOUNT, generation=started)
        accounts.clear()
        accounts.remember(OTHER_KEY, "", OTHER_ACCOUNT, generation=started)
        assert len(accounts) == 0


class TestBound:
    def test_least_recently_used_entry_goes_first(self):
        accounts = cache(max_entries=2)
        third_key = bytes(range(2, 34))
        accounts.remember(KEY, "", ACCOUNT, generation=0)
        accounts.remember(OTHER_KEY, "", OTHER_ACCOUNT, generation=0)
        assert accounts.fresh(KEY, "") == ACCOUNT  # KEY is now the most recently used
        accounts.remember(third_key, "", OTHER_ACCOUNT, generation=0)
        assert len(accounts) == 2 and accounts.remembered(OTHER_KEY, "") is None
        assert accounts.fresh(KEY, "") == ACCOUNT
