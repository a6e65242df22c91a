"""SessionChains over an in-memory sidecar and chain: compare-and-append, closing, and a race between two
relayers that share no lock (the chain settles it: the lowest blob id wins, the loser hears 409)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from relayer.auth import AuthInfo
from relayer.errors import NotFound
from relayer.sessions.chain_index import Claim
from relayer.sessions.chains import SessionChains, SessionLimits
from relayer.sessions.errors import HeadMoved, SessionClosed
from sidecar.protocol import BlobStatus, OpenedBlob, UploadReply, UploadRequest

OWNER = "0x" + "ab" * 32
AUTH = AuthInfo(b"k", "6b", OWNER, "0x" + "cd" * 32, "seal-session")
LIMITS = SessionLimits(lock_seconds=5, lock_wait_seconds=1, storage_epochs=1)


class World:
    """Walrus (blob id → ciphertext) and the owner's tagged Blob objects on chain; 'encryption' is a prefix."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.claims: list[Claim] = []
        self.next_ids: list[str] = []
        self.head_barrier: asyncio.Barrier | None = None  # racers wait here after reading the head
        self.upload_barrier: asyncio.Barrier | None = None  # … and here after storing their blob

    async def encrypt(self, data: bytes, *, owner: str, package_id: str, request_id: str | None = None) -> bytes:
        if self.head_barrier is not None:
            await self.head_barrier.wait()
        return b"sealed:" + data

    async def upload(self, request: UploadRequest, *, request_id: str | None = None) -> UploadReply:
        blob_id = self.next_ids.pop(0) if self.next_ids else f"blob{len(self.blobs):04d}"
        self.blobs[blob_id] = request.data
        assert request.session is not None
        self.claims.append(Claim(request.session.session_id, request.session.sequence, blob_id, request.session.closed))
        if self.upload_barrier is not None:
            await self.upload_barrier.wait()
        return UploadReply(blob_id, "0x1", "ok")

    async def open_blobs(self, blob_ids: Sequence[str], *, package_id: str, account_id: str, session: str,
                         request_id: str | None = None) -> dict[str, OpenedBlob]:
        return {blob_id: OpenedBlob(blob_id, BlobStatus.OPENED, self.blobs[blob_id].removeprefix(b"sealed:"), 1)
                for blob_id in blob_ids}

    async def claims_of(self, owner: str, session_id: str | None = None) -> list[Claim]:
        return [claim for claim in self.claims if session_id is None or claim.session_id == session_id]


class Index:
    def __init__(self, world: World) -> None:
        self.world = world

    async def claims(self, owner: str, session_id: str | None = None) -> list[Claim]:
        return await self.world.claims_of(owner, session_id)


def relayer(world: World) -> SessionChains:
    return SessionChains(sidecar=world, index=Index(world), cache=None, package_id="0x2", limits=LIMITS)  # type: ignore[arg-type]


async def add(chains: SessionChains, text: str, expected_head: int | str | None = None, session_id: str = "chat"):
    return await chains.append(AUTH, session_id, role="user", text=text, metadata={}, expected_head=expected_head,
                               seal_session="s", request_id=None)


class TestCompareAndAppend:
    async def test_appends_link_and_read_back(self):
        chains = relayer(World())
        first = await add(chains, "a", -1)
        second = await add(chains, "b", first.blob_id)
        third = await add(chains, "c", 1)
        assert (second.prev_blob_id, third.prev_blob_id, third.sequence) == (first.blob_id, second.blob_id, 2)
        window = await chains.read(AUTH, "chat", last_n=2, since_sequence=None, seal_session="s", request_id=None)
        assert [item.frame.text for item in window.frames] == ["b", "c"]

    async def test_stale_heads_are_refused_with_the_current_head(self):
        chains = relayer(World())
        first = await add(chains, "a")
        with pytest.raises(HeadMoved) as moved:
            await add(chains, "b", -1)
        assert moved.value.head is not None and (moved.value.head.sequence, moved.value.head.blob_id) == (0, first.blob_id)
        with pytest.raises(HeadMoved):
            await add(chains, "b", "someone-else")
        with pytest.raises(HeadMoved) as empty:
            await add(chains, "x", 3, session_id="new")
        assert empty.value.head is None and empty.value.details()["head_sequence"] == -1

    async def test_closed_sessions_take_nothing_more(self):
        chains = relayer(World())
        await add(chains, "a")
        await chains.append(AUTH, "chat", role="system", text="bye", metadata={}, expected_head=None, seal_session="s",
                            request_id=None, closing=True)
        with pytest.raises(SessionClosed):
            await add(chains, "b")
        with pytest.raises(NotFound):
            await chains.append(AUTH, "nothing", role="system", text="bye", metadata={}, expected_head=None,
                                seal_session="s", request_id=None, closing=True)


class TestRaceWithoutASharedLock:
    async def race(self, world: World, *, see_each_other: bool) -> list:
        await add(relayer(world), "start")
        world.head_barrier = asyncio.Barrier(2)  # both racers read head 0
        if see_each_other:
            world.upload_barrier = asyncio.Barrier(2)  # both blobs are on chain before either racer looks again
        world.next_ids = ["zzz-first-stored", "aaa-second-stored"]
        outcomes = await asyncio.gather(*(add(relayer(world), f"racer {i}", 0) for i in range(2)), return_exceptions=True)
        world.head_barrier = world.upload_barrier = None
        return outcomes

    async def test_racers_that_see_each_other_make_one_winner_the_lowest_blob_id(self):
        world = World()
        outcomes = await self.race(world, see_each_other=True)
        winners = [outcome.blob_id for outcome in outcomes if not isinstance(outcome, BaseException)]
        losers = [outcome for outcome in outcomes if isinstance(outcome, HeadMoved)]
        assert winners == ["aaa-second-stored"]
        assert len(losers) == 1 and losers[0].head is not None and losers[0].head.blob_id == "aaa-second-stored"
        window = await relayer(world).read(AUTH, "chat", last_n=None, since_sequence=None, seal_session="s", request_id=None)
        assert window.head.blob_id == "aaa-second-stored" and window.siblings == ("zzz-first-stored",)
        following = await add(relayer(world), "next", 1)
        assert following.prev_blob_id == "aaa-second-stored"

    async def test_a_racer_that_looked_before_the_other_stored_also_answers_200_and_reads_name_it_a_sibling(self):
        # The documented window: without a shared lock, the first racer checks the chain before the second
        # racer's blob is there. Both hear 200; every read serves the lowest blob id and lists the other.
        world = World()
        outcomes = await self.race(world, see_each_other=False)
        assert sorted(outcome.blob_id for outcome in outcomes if not isinstance(outcome, BaseException)) == [
            "aaa-second-stored", "zzz-first-stored"]
        window = await relayer(world).read(AUTH, "chat", last_n=None, since_sequence=None, seal_session="s", request_id=None)
        assert [item.blob_id for item in window.frames][1:] == ["aaa-second-stored"]
        assert window.siblings == ("zzz-first-stored",)
