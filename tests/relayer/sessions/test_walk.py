"""The verified walk against an in-memory frame source: every tampering case is a typed error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from relayer.errors import NotFound
from relayer.sessions.chain_index import Claim, summaries
from relayer.sessions.errors import (
    ForkDetected,
    GapDetected,
    MalformedFrame,
    ReorderDetected,
    SubstitutionDetected,
    WrongOwner,
    WrongSession,
)
from relayer.sessions.frames import Frame, first_frame, next_frame
from relayer.sessions.walk import Unreadable, read_window
from tests.relayer.sessions.test_frames import OWNER, chain

SESSION = "chat-1"


class Store:
    """Blob id → plaintext, counting fetch rounds."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes | Unreadable] = {}
        self.rounds = 0

    async def fetch(self, blob_ids: Sequence[str]) -> Mapping[str, bytes | Unreadable]:
        self.rounds += 1
        return {blob_id: self.blobs.get(blob_id, Unreadable.NOT_FOUND) for blob_id in blob_ids}


def stored(length: int) -> tuple[Store, list[Claim], list[tuple[str, Frame, bytes]]]:
    store = Store()
    frames = chain(length)
    claims = []
    for blob_id, frame, raw in frames:
        store.blobs[blob_id] = raw
        claims.append(Claim(SESSION, frame.sequence, blob_id, frame.closed))
    return store, claims, frames


async def window(store: Store, claims: list[Claim], first: int = 0, *, owner: str = OWNER):
    return await read_window(store, claims, session_id=SESSION, owner=owner, first=first)


class TestIntactChain:
    async def test_reads_the_window_in_one_round(self):
        store, claims, frames = stored(50)
        result = await window(store, claims, first=30)
        assert [item.frame.text for item in result.frames] == [f"turn {i}" for i in range(30, 50)]
        assert result.head.blob_id == frames[-1][0]
        assert store.rounds == 1
        assert result.siblings == ()

    async def test_first_is_clamped(self):
        store, claims, _ = stored(3)
        assert len((await window(store, claims, first=-5)).frames) == 3
        assert len((await window(store, claims, first=99)).frames) == 1

    async def test_no_claims_is_not_found(self):
        with pytest.raises(NotFound):
            await window(Store(), [])

    async def test_race_siblings_resolve_to_the_lowest_blob_id(self):
        store, claims, frames = stored(4)
        blob_id, previous, raw = frames[2]
        rival = next_frame(previous, raw, blob_id, role="user", text="rival", metadata={})
        store.blobs["aaa-rival"] = rival.encode()
        claims.append(Claim(SESSION, 3, "aaa-rival", False))
        result = await window(store, claims)
        assert result.head.blob_id == "aaa-rival" and result.frames[-1].frame.text == "rival"
        assert result.siblings == (frames[3][0],)

    def test_summaries(self):
        _, claims, frames = stored(3)
        summary, other = summaries([*claims, Claim("other", 0, "x", True), Claim("other", 0, "w", True)])
        assert (summary.session_id, summary.head_sequence, summary.head_blob_id, summary.closed) == (SESSION, 2, frames[2][0], False)
        assert (other.session_id, other.head_blob_id, other.head_claims, other.closed) == ("other", "w", 2, True)


class TestTampering:
    async def test_fork_at_the_head(self):
        store, claims, frames = stored(4)
        blob_id = frames[1][0]  # a frame 3 whose history differs: it claims frame 1 as its parent
        forged = Frame(SESSION, OWNER, 3, "user", "forged", blob_id, "e" * 64, (blob_id, frames[0][0], "x"))
        store.blobs["zzz"] = forged.encode()
        claims.append(Claim(SESSION, 3, "zzz", False))
        with pytest.raises(ForkDetected, match="sequence 3") as caught:
            await window(store, claims)
        assert caught.value.blob_ids == tuple(sorted((frames[3][0], "zzz")))

    async def test_fork_below_the_head(self):
        store, claims, frames = stored(5)
        blob_id = frames[0][0]
        other = Frame(SESSION, OWNER, 1, "user", "other", blob_id, "f" * 64, (blob_id,))  # another parent hash
        store.blobs["zzz"] = other.encode()
        claims.append(Claim(SESSION, 1, "zzz", False))
        with pytest.raises(ForkDetected, match="sequence 1"):
            await window(store, claims)

    async def test_gap_on_chain(self):
        store, claims, _ = stored(5)
        with pytest.raises(GapDetected, match="sequence 2"):
            await window(store, [claim for claim in claims if claim.sequence != 2], first=3)

    async def test_gap_on_walrus(self):
        store, claims, frames = stored(5)
        store.blobs[frames[2][0]] = Unreadable.NOT_FOUND
        with pytest.raises(GapDetected, match="not on Walrus"):
            await window(store, claims)

    async def test_reorder_by_chain_tags(self):
        store, claims, _ = stored(5)
        swapped = [Claim(SESSION, {1: 2, 2: 1}.get(claim.sequence, claim.sequence), claim.blob_id, False) for claim in claims]
        with pytest.raises(ReorderDetected, match="marks it as"):
            await window(store, swapped)

    async def test_reorder_by_link(self):
        store, claims, frames = stored(4)
        # A frame 4 that links to frame 2's blob (with frame 2's hash): the chain says that blob is sequence 2.
        jump = Frame(SESSION, OWNER, 4, "user", "jump", frames[2][0], frames[3][1].prev_frame_hash, (frames[2][0], frames[1][0], frames[0][0], frames[0][0]))
        store.blobs["jump"] = jump.encode()
        claims.append(Claim(SESSION, 4, "jump", False))
        with pytest.raises(ReorderDetected, match="marks as sequence 2"):
            await window(store, claims)

    async def test_substituted_frame_content(self):
        store, claims, frames = stored(5)
        blob_id, original, _ = frames[2]
        doctored = Frame(SESSION, OWNER, 2, original.role, "doctored", original.prev_blob_id, original.prev_frame_hash,
                         original.earlier_blob_ids)
        store.blobs[blob_id] = doctored.encode()
        with pytest.raises(SubstitutionDetected, match="hashed"):
            await window(store, claims)

    async def test_substituted_ciphertext(self):
        store, claims, frames = stored(3)
        store.blobs[frames[1][0]] = Unreadable.CORRUPT
        with pytest.raises(SubstitutionDetected, match="not a frame sealed"):
            await window(store, claims)

    async def test_link_to_an_unclaimed_blob(self):
        store, claims, frames = stored(3)
        claims = [claim if claim.sequence != 1 else Claim(SESSION, 1, "elsewhere", False) for claim in claims]
        store.blobs["elsewhere"] = frames[1][2]
        with pytest.raises(SubstitutionDetected, match="no blob on chain claims"):
            await window(store, claims)

    async def test_skip_list_disagreement(self):
        store, claims, frames = stored(4)
        blob_id, original, _ = frames[3]
        bent = Frame(SESSION, OWNER, 3, original.role, original.text, original.prev_blob_id, original.prev_frame_hash,
                     (original.prev_blob_id, "elsewhere", frames[0][0]))
        store.blobs[blob_id] = bent.encode()
        with pytest.raises(SubstitutionDetected, match="skip lists"):
            await window(store, claims)

    async def test_wrong_session(self):
        store, claims, frames = stored(3)
        _, original, _ = frames[1]
        store.blobs[frames[1][0]] = Frame("chat-2", OWNER, 1, "user", "x", original.prev_blob_id, original.prev_frame_hash,
                                          original.earlier_blob_ids).encode()
        with pytest.raises(WrongSession, match="chat-2"):
            await window(store, claims)

    async def test_wrong_owner(self):
        store, claims, _ = stored(3)
        with pytest.raises(WrongOwner):
            await window(store, claims, owner="0x" + "cd" * 32)

    async def test_bad_frame_bytes(self):
        store, claims, frames = stored(3)
        store.blobs[frames[2][0]] = b"not a frame"
        with pytest.raises(MalformedFrame):
            await window(store, claims)

    async def test_frame_after_closing_frame(self):
        store = Store()
        closing = first_frame(session_id=SESSION, owner=OWNER, role="system", text="closed", metadata={}, closed=True)
        after = next_frame(closing, closing.encode(), "b0", role="user", text="more", metadata={})
        store.blobs.update(b0=closing.encode(), b1=after.encode())
        with pytest.raises(ReorderDetected, match="closing"):
            await window(store, [Claim(SESSION, 0, "b0", True), Claim(SESSION, 1, "b1", False)])
