"""The session index over the localnet's real GraphQL server: claims kept per owner with the checkpoint they
are true at, brought up to date from the chain's changes since then, and exactly what a full listing says."""

from __future__ import annotations

import secrets

import pytest

import chain.graphql
from chain.reader import ChainReader, ObjectRef, OwnedBlob, OwnerBlobChanges, OwnerChangeFeed, blob_id_from_u256
from chain.transactions import BlobTags, build_blob_metadata_transaction
from localnet.world import World
from relayer.sessions.chain_index import Claim, SessionIndex
from tests.chain.test_readers import USER, WALLET, WALLET_SEED, reader_for

OTHER = "0x" + "cd" * 32


class Counting:
    """The reader, counting full listings and change queries (what an append costs)."""

    def __init__(self, reader: ChainReader) -> None:
        self.reader = reader
        self.listings = 0
        self.change_queries = 0

    async def owned_blobs(self, owner: str, walrus_package_id: str) -> list[OwnedBlob]:
        self.listings += 1
        return await self.reader.owned_blobs(owner, walrus_package_id)

    async def latest_checkpoint(self) -> int:
        assert isinstance(self.reader, OwnerChangeFeed)
        return await self.reader.latest_checkpoint()

    async def owner_blob_changes(self, owner: str, walrus_package_id: str, after_checkpoint: int) -> OwnerBlobChanges:
        assert isinstance(self.reader, OwnerChangeFeed)
        self.change_queries += 1
        return await self.reader.owner_blob_changes(owner, walrus_package_id, after_checkpoint)


def new_world(path, **options) -> World:
    world = World(path, **options)
    world.publish_memwal_package()
    world.publish_walrus_package()
    world.create_registry()
    world.fund(WALLET, 10**12)
    return world


@pytest.fixture
def world(tmp_path) -> World:
    return new_world(tmp_path / "sui.json")


def tag_frame(world: World, session_id: str, sequence: int, *, owner: str = USER) -> str:
    """Another relayer's append, as the chain sees it: a Blob tagged with session and sequence, sent to the owner."""
    blob_id = blob_id_from_u256(int.from_bytes(secrets.token_bytes(32), "little"))
    object_id = world.create_blob_object(blob_id, 17, WALLET)
    tags = BlobTags(owner=owner, namespace="memwal-session", memwal_package_id=world.packages["memwal"],
                    extra=(("memwal_session_id", session_id), ("memwal_session_seq", str(sequence))))
    gas = next(item for item in world.owned_by(WALLET, "0x2::coin::Coin"))
    tx_bytes, signature = build_blob_metadata_transaction(
        seed=WALLET_SEED, walrus_package_id=world.packages["walrus"], blobs=[object_ref(world, object_id)],
        tags=tags, gas_coins=[object_ref(world, gas.object_id)], gas_price=world.reference_gas_price, gas_budget=50_000_000)
    world.apply_transaction(tx_bytes, [signature])
    return blob_id


def object_ref(world: World, object_id: str) -> ObjectRef:
    item = world.get(object_id)
    assert item is not None
    return ObjectRef(item.object_id, item.version, item.digest)


def send_away(world: World, blob_id: str) -> None:
    """The owner sends one of their frame Blobs to someone else."""
    item = next(item for item in world.owned_by(USER) if item.contents is not None
                and "blob::Blob" in item.type and blob_id_of(item) == blob_id)
    with world.transaction(USER) as tx:
        tx.update(item, owner={"AddressOwner": OTHER})


def blob_id_of(item) -> str:
    return blob_id_from_u256(item.contents.fields["blob_id"].value)


def index_over(world: World, reader, *, cache_claims: int = 1000) -> SessionIndex:
    return SessionIndex(reader, walrus_package_id=world.packages["walrus"], package_id=world.packages["memwal"],
                        cache_claims=cache_claims)


def by_sequence(claims: list[Claim]) -> list[tuple[str, int, str]]:
    return sorted((claim.session_id, claim.sequence, claim.blob_id) for claim in claims)


class TestChangeFeed:
    async def test_graphql_lists_an_owners_blob_changes_after_a_checkpoint(self, world):
        async with reader_for(world, "graphql") as reader:
            assert isinstance(reader, OwnerChangeFeed)
            start = await reader.latest_checkpoint()
            blob_id = tag_frame(world, "chat", 0)
            changes = await reader.owner_blob_changes(USER, world.packages["walrus"], start)
            assert changes.complete and changes.checkpoint == start + 2  # the blob's creation, then the transfer
            [change] = changes.changes  # the creation went to the wallet, not to USER: not USER's transaction
            assert change.blob is not None and change.blob.blob_id == blob_id
            assert change.blob.metadata["memwal_session_seq"] == "0"
            assert (await reader.owner_blob_changes(USER, world.packages["walrus"], changes.checkpoint)).changes == ()
            send_away(world, blob_id)
            gone = await reader.owner_blob_changes(USER, world.packages["walrus"], changes.checkpoint)
            assert [(change.object_id, change.blob) for change in gone.changes] == [(change.object_id, None)]

    def test_a_deleted_or_wrapped_object_counts_as_gone(self):
        # The localnet never deletes objects, so this path of a real node's answer is read here directly.
        gone = "0x" + "12" * 32
        change = chain.graphql._blob_change({"address": gone, "outputState": None}, USER, "0x2::blob::Blob")
        assert change is not None and (change.object_id, change.blob) == (gone, None)

    @pytest.mark.parametrize("protocol", ["grpc", "jsonrpc"])
    async def test_other_backends_do_not_offer_the_feed(self, world, protocol):
        async with reader_for(world, protocol) as reader:
            assert not isinstance(reader, OwnerChangeFeed)  # the index lists every Blob on them instead


class TestSessionIndex:
    async def test_one_full_listing_then_only_changes(self, world):
        async with reader_for(world, "graphql") as reader:
            counting = Counting(reader)
            index = index_over(world, counting)
            first = tag_frame(world, "chat", 0)
            assert by_sequence(await index.claims(USER, "chat")) == [("chat", 0, first)]
            later = [tag_frame(world, "chat", sequence) for sequence in (1, 2)]
            other = tag_frame(world, "other", 0)
            assert by_sequence(await index.claims(USER, "chat")) == [("chat", 0, first), ("chat", 1, later[0]),
                                                                     ("chat", 2, later[1])]
            assert by_sequence(await index.claims(USER)) == by_sequence(
                [Claim("chat", 0, first, False), Claim("chat", 1, later[0], False), Claim("chat", 2, later[1], False),
                 Claim("other", 0, other, False)])
            send_away(world, later[1])
            assert sorted(claim.sequence for claim in await index.claims(USER, "chat")) == [0, 1]
            assert counting.listings == 1 and counting.change_queries >= 3
            full = index_over(world, reader, cache_claims=0)  # what listing everything says, for comparison
            assert by_sequence(await full.claims(USER)) == by_sequence(await index.claims(USER))

    async def test_without_a_cache_every_call_lists(self, world):
        async with reader_for(world, "graphql") as reader:
            counting = Counting(reader)
            index = index_over(world, counting, cache_claims=0)
            blob_id = tag_frame(world, "chat", 0)
            for _ in range(3):
                assert by_sequence(await index.claims(USER, "chat")) == [("chat", 0, blob_id)]
            assert (counting.listings, counting.change_queries) == (3, 0)

    async def test_an_owner_over_the_budget_is_not_kept(self, world):
        async with reader_for(world, "graphql") as reader:
            counting = Counting(reader)
            index = index_over(world, counting, cache_claims=1)
            blobs = [tag_frame(world, "chat", sequence) for sequence in (0, 1)]
            for _ in range(2):
                assert [claim.blob_id for claim in sorted(await index.claims(USER), key=lambda c: c.sequence)] == blobs
            assert counting.listings == 2

    async def test_the_least_recently_used_owner_goes_first(self, world):
        third = "0x" + "ef" * 32
        async with reader_for(world, "graphql") as reader:
            counting = Counting(reader)
            index = index_over(world, counting, cache_claims=3)
            tag_frame(world, "a", 0, owner=USER)
            for sequence in (0, 1):
                tag_frame(world, "b", sequence, owner=OTHER)
            tag_frame(world, "c", 0, owner=third)
            for owner in (USER, OTHER, USER, OTHER):  # 1 + 2 claims: both kept, one listing each
                await index.claims(owner)
            assert counting.listings == 2
            await index.claims(third)  # 4 claims: USER (the least recently used) is dropped
            assert counting.listings == 3
            await index.claims(OTHER)
            assert counting.listings == 3
            assert [claim.session_id for claim in await index.claims(USER)] == ["a"]  # listed again
            assert counting.listings == 4

    async def test_more_changes_than_one_answer_lists_afresh(self, world, monkeypatch):
        async with reader_for(world, "graphql") as reader:
            counting = Counting(reader)
            index = index_over(world, counting)
            await index.claims(USER)
            monkeypatch.setattr(chain.graphql, "MAX_CHANGE_PAGES", 1)
            monkeypatch.setattr(chain.graphql.queries, "PAGE_SIZE", 1)
            blobs = [tag_frame(world, "chat", sequence) for sequence in (0, 1)]
            assert [claim.blob_id for claim in sorted(await index.claims(USER), key=lambda c: c.sequence)] == blobs
            assert counting.listings == 2  # the first look, then afresh because the changes did not fit

    async def test_a_lagging_index_is_caught_up_later_never_skipped(self, tmp_path):
        now = [1000.0]
        world = new_world(tmp_path / "lag.json", clock=lambda: now[0], indexing_lag_seconds=5.0)
        now[0] += 10
        async with reader_for(world, "graphql") as reader:
            index = index_over(world, reader)
            assert await index.claims(USER) == []
            blob_id = tag_frame(world, "chat", 0)
            assert await index.claims(USER) == []  # executed, not yet indexed: a full listing would not see it either
            now[0] += 10
            assert by_sequence(await index.claims(USER)) == [("chat", 0, blob_id)]
