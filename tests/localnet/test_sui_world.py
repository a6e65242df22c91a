"""localnet.world and localnet.move: Move-like rules, atomicity and persistence."""

from __future__ import annotations

import json

import pytest

from localnet.move_values import U64
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
        assert sorted(path.name for path in (tmp_path / "state").iterdir()) == ["sui.json", "sui.json.journal"]

    def test_a_transaction_appends_its_changes_and_leaves_the_snapshot_alone(self, world, tmp_path):
        world.create_account("0x1")
        world.save()
        snapshot = (tmp_path / "state" / "sui.json").read_bytes()
        journal = tmp_path / "state" / "sui.json.journal"
        size = journal.stat().st_size
        transactions = len(world.transactions)
        blob = world.create_blob_object("M4hsZGQ1oCktdzegB6HnI6Mi28S2nqOPHxK-W7_4BUk", 17, "0x2")
        assert (tmp_path / "state" / "sui.json").read_bytes() == snapshot
        lines = [json.loads(line) for line in journal.read_bytes()[size:].splitlines()]
        assert [line["position"] for line in lines] == list(range(transactions, len(world.transactions)))
        assert [item["object_id"] for item in lines[-1]["objects"]] == [blob]

    def test_the_former_saving_writes_the_whole_state_per_transaction(self, tmp_path):
        world = World(tmp_path / "state" / "sui.json", snapshot_every_transaction=True)
        account_id = world.create_account("0x1")
        assert not (tmp_path / "state" / "sui.json.journal").exists()
        assert World(tmp_path / "state" / "sui.json").get(account_id) == world.get(account_id)

    def test_loading_folds_the_journal_into_the_snapshot(self, world, tmp_path):
        account_id = world.create_account("0x1")
        reloaded = World(tmp_path / "state" / "sui.json")
        assert (tmp_path / "state" / "sui.json.journal").read_bytes() == b""
        assert reloaded.get(account_id) == world.get(account_id)
        assert World(tmp_path / "state" / "sui.json").transactions == world.transactions

    def test_a_torn_last_line_is_skipped(self, world, tmp_path):
        """A crash mid-write leaves part of a line: that transaction never returned; everything before stays."""
        account_id = world.create_account("0x1")
        journal = tmp_path / "state" / "sui.json.journal"
        with open(journal, "ab") as handle:
            handle.write(b'{"position": 99, "objects": [')
        reloaded = World(tmp_path / "state" / "sui.json")
        assert reloaded.get(account_id) == world.get(account_id) and reloaded.transactions == world.transactions

    def test_lines_the_snapshot_holds_are_not_applied_twice(self, world, tmp_path):
        """A crash after the snapshot's rename but before the journal was emptied."""
        world.create_account("0x1")
        journal = tmp_path / "state" / "sui.json.journal"
        kept = journal.read_bytes()
        world.save()
        journal.write_bytes(kept)
        reloaded = World(tmp_path / "state" / "sui.json")
        assert reloaded.transactions == world.transactions and reloaded.events == world.events
        assert reloaded.dynamic_fields == world.dynamic_fields

    def test_a_journal_with_a_gap_is_refused(self, world, tmp_path):
        world.create_account("0x1")
        journal = tmp_path / "state" / "sui.json.journal"
        entry = json.loads(journal.read_bytes().splitlines()[-1])
        journal.write_bytes(json.dumps({**entry, "position": entry["position"] + 5}).encode() + b"\n")
        with pytest.raises(ValueError, match="skips"):
            World(tmp_path / "state" / "sui.json")

    def test_failed_change_leaves_no_trace(self, world):
        world.create_account("0x1")
        objects, events = dict(world.objects), list(world.events)
        with pytest.raises(RuntimeError, match="boom"):
            with world.transaction("0x1") as tx:
                tx.create("0x2::coin::Coin<0x2::sui::SUI>", {}, {"AddressOwner": "0x1"})
                raise RuntimeError("boom")
        assert world.objects == objects and world.events == events

    def test_a_failed_change_takes_back_its_dynamic_fields(self, world):
        account_id = world.create_account("0x1")
        fields = {parent: list(ids) for parent, ids in world.dynamic_fields.items()}
        with pytest.raises(RuntimeError, match="boom"):
            with world.transaction("0x1") as tx:
                tx.add_field(account_id, "u64", U64(1), "u64", U64(2))
                tx.add_field("0x" + "ab" * 32, "u64", U64(1), "u64", U64(2))
                raise RuntimeError("boom")
        assert world.dynamic_fields == fields

    def test_bad_blob_id_is_refused(self, world):
        with pytest.raises(ValueError, match="43"):
            world.create_blob_object("short", 1, "0x1")
