"""localnet.world and localnet.move: Move-like rules, atomicity and persistence."""

from __future__ import annotations

import pytest

from localnet.object_store import MoveAbort
from localnet.world import World


@pytest.fixture
def world(tmp_path) -> World:
    return World(tmp_path / "state" / "sui.json")


class TestMemwalRules:
    def test_one_account_per_owner(self, world):
        world.create_account("0x1")
        with pytest.raises(MoveAbort, match="already has an account"):
            world.create_account("0x01")

    def test_delegate_key_limits(self, world):
        account_id = world.create_account("0x1")
        with pytest.raises(MoveAbort, match="32 bytes"):
            world.add_delegate_key(account_id, b"short", "x")
        with pytest.raises(MoveAbort, match="64 bytes"):
            world.add_delegate_key(account_id, bytes(32), "x" * 65)
        for number in range(20):
            world.add_delegate_key(account_id, bytes([number]) * 32, "")
        with pytest.raises(MoveAbort, match="at most 20"):
            world.add_delegate_key(account_id, bytes([99]) * 32, "")

    def test_deactivated_account_refuses_new_keys_but_allows_removal(self, world):
        account_id = world.create_account("0x1")
        world.add_delegate_key(account_id, bytes(32), "a")
        world.set_active(account_id, False)
        with pytest.raises(MoveAbort, match="deactivated"):
            world.add_delegate_key(account_id, bytes([1]) * 32, "b")
        world.remove_delegate_key(account_id, bytes(32))
        kinds = [event.type.rsplit("::", 1)[1] for event in world.events]
        assert kinds == ["AccountCreated", "DelegateKeyAdded", "AccountDeactivated", "DelegateKeyRemoved"]

    def test_versions_grow_with_every_change(self, world):
        account_id = world.create_account("0x1")
        before = world.get(account_id).version
        world.add_delegate_key(account_id, bytes(32), "a")
        assert world.get(account_id).version > before


class TestPersistence:
    def test_reload_keeps_everything_and_no_temp_file_is_left(self, world, tmp_path):
        account_id = world.create_account("0x1")
        blob = world.create_blob_object("M4hsZGQ1oCktdzegB6HnI6Mi28S2nqOPHxK-W7_4BUk", 17, "0x2")
        reloaded = World(tmp_path / "state" / "sui.json")
        assert reloaded.get(account_id) == world.get(account_id)
        assert reloaded.get(blob) == world.get(blob)
        assert reloaded.events == world.events and reloaded.transactions == world.transactions
        assert sorted(path.name for path in (tmp_path / "state").iterdir()) == ["sui.json"]

    def test_failed_change_leaves_no_trace(self, world):
        world.create_account("0x1")
        objects, events = dict(world.objects), list(world.events)
        with pytest.raises(RuntimeError, match="boom"):
            with world.transaction("0x1") as tx:
                tx.create("0x2::coin::Coin<0x2::sui::SUI>", {}, {"AddressOwner": "0x1"})
                raise RuntimeError("boom")
        assert world.objects == objects and world.events == events

    def test_bad_blob_id_is_refused(self, world):
        with pytest.raises(ValueError, match="43"):
            world.create_blob_object("short", 1, "0x1")
