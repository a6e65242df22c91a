"""The verified walk: a window of a session's frames, with every link checked, or a typed error.

The chain's claims (relayer/sessions/chain_index.py) give the blob ids of every sequence, so a whole window
is fetched in one parallel round (not one round trip per turn); then, from the head back to the first wanted
sequence, each link is checked:
  (1) every fetched frame parses (version, caps, canonical bytes), names this owner and this session, and has
      the sequence its chain tag claims;
  (2) the head: among the claims of the highest sequence, the frames must share one parent (a race between
      two appends) — the lowest blob id is the head, the others are reported as siblings — else a fork;
  (3) each frame's ``prev_blob_id`` is the chain's claim for the sequence below, the SHA-256 of that frame's
      bytes is its ``prev_frame_hash``, and the skip lists of the two agree;
  (4) any other claim of a walked sequence is a race sibling (same parent) or a fork;
  (5) no frame follows a closing frame; no sequence below the head lacks a claim.
The frames' text never leaves this module unless all of it verified.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from relayer.errors import NotFound
from relayer.sessions.chain_index import Claim
from relayer.sessions.errors import (
    ForkDetected,
    GapDetected,
    ReorderDetected,
    SubstitutionDetected,
    WrongOwner,
    WrongSession,
)
from relayer.sessions.frames import Frame, frame_hash, parse_frame


class Unreadable(Enum):
    NOT_FOUND = "not_found"  # every aggregator said 404
    CORRUPT = "corrupt"  # not a Seal object of this owner and package, or it does not decrypt


class FrameSource(Protocol):
    async def fetch(self, blob_ids: Sequence[str]) -> Mapping[str, bytes | Unreadable]:
        """Each blob's plaintext (or why not); raises an Outage when it cannot tell right now."""


@dataclass(frozen=True)
class VerifiedFrame:
    blob_id: str
    frame: Frame
    raw: bytes  # the plaintext bytes: the next frame's prev_frame_hash hashes them


@dataclass(frozen=True)
class Window:
    frames: tuple[VerifiedFrame, ...]  # ascending sequence, contiguous, ending at the head
    head: VerifiedFrame
    siblings: tuple[str, ...]  # blobs that lost a race for a sequence in the window (never part of the history)


async def read_window(source: FrameSource, claims: Sequence[Claim], *, session_id: str, owner: str, first: int) -> Window:
    """Frames ``first``..head of ``session_id`` (``first`` is clamped to 0..head), verified."""
    by_sequence: dict[int, list[str]] = defaultdict(list)
    for claim in claims:
        if claim.session_id == session_id:
            by_sequence[claim.sequence].append(claim.blob_id)
    if not by_sequence:
        raise NotFound(f"Session {session_id} not found")
    head_sequence = max(by_sequence)
    missing = [sequence for sequence in range(head_sequence) if sequence not in by_sequence]
    if missing:  # (5)
        raise GapDetected(f"session {session_id}: no blob on chain for sequence {missing[0]}"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    first = min(max(first, 0), head_sequence)
    sequence_of = {blob_id: sequence for sequence, blob_ids in by_sequence.items() for blob_id in blob_ids}
    wanted = sorted({blob_id for sequence in range(first, head_sequence + 1) for blob_id in by_sequence[sequence]})
    fetched = await source.fetch(wanted)
    frames = {blob_id: _checked(blob_id, fetched[blob_id], sequence_of[blob_id], session_id, owner) for blob_id in wanted}  # (1)

    head, siblings = _head(head_sequence, [frames[blob_id] for blob_id in by_sequence[head_sequence]])  # (2)
    path = [head]
    current = head
    for sequence in range(head_sequence - 1, first - 1, -1):
        parent_id = current.frame.prev_blob_id
        if parent_id not in by_sequence[sequence]:  # (3)
            where = f"which the chain marks as sequence {sequence_of[parent_id]}" if parent_id in sequence_of else \
                "which no blob on chain claims"
            error = ReorderDetected if parent_id in sequence_of else SubstitutionDetected
            raise error(f"frame {current.frame.sequence} links to blob {parent_id}, {where}")
        parent = frames[parent_id]
        _check_link(parent, current)
        if parent.frame.closed:  # (5)
            raise ReorderDetected(f"frame {current.frame.sequence} follows the closing frame {sequence}")
        for other_id in by_sequence[sequence]:  # (4)
            if other_id != parent_id:
                _sibling_or_fork(frames[other_id], parent)
                siblings.append(other_id)
        path.append(parent)
        current = parent
    return Window(tuple(reversed(path)), head, tuple(sorted(siblings)))


def _checked(blob_id: str, fetched: bytes | Unreadable, claimed_sequence: int, session_id: str, owner: str) -> VerifiedFrame:
    if isinstance(fetched, Unreadable):
        if fetched is Unreadable.NOT_FOUND:
            raise GapDetected(f"blob {blob_id} (sequence {claimed_sequence}) is not on Walrus")
        raise SubstitutionDetected(f"blob {blob_id} (sequence {claimed_sequence}) is not a frame sealed for this owner")
    frame = parse_frame(fetched)
    if frame.owner != owner:
        raise WrongOwner(f"blob {blob_id} is a frame of owner {frame.owner}")
    if frame.session_id != session_id:
        raise WrongSession(f"blob {blob_id} is a frame of session {frame.session_id}")
    if frame.sequence != claimed_sequence:
        raise ReorderDetected(f"blob {blob_id} holds frame {frame.sequence}, but the chain marks it as {claimed_sequence}")
    return VerifiedFrame(blob_id, frame, fetched)


def _head(sequence: int, candidates: list[VerifiedFrame]) -> tuple[VerifiedFrame, list[str]]:
    parents = {(candidate.frame.prev_blob_id, candidate.frame.prev_frame_hash) for candidate in candidates}
    if len(parents) > 1:
        raise ForkDetected(f"sequence {sequence} has frames with different histories",
                           sequence=sequence, blob_ids=tuple(sorted(candidate.blob_id for candidate in candidates)))
    ordered = sorted(candidates, key=lambda candidate: candidate.blob_id)
    return ordered[0], [candidate.blob_id for candidate in ordered[1:]]


def _check_link(parent: VerifiedFrame, child: VerifiedFrame) -> None:
    sequence = child.frame.sequence
    if child.frame.prev_frame_hash != frame_hash(parent.raw):
        raise SubstitutionDetected(f"frame {sequence - 1} (blob {parent.blob_id}) is not the frame that frame {sequence} hashed")
    expected = (parent.blob_id, *parent.frame.earlier_blob_ids)[: len(child.frame.earlier_blob_ids)]
    if child.frame.earlier_blob_ids != expected:
        raise SubstitutionDetected(f"the skip lists of frames {sequence - 1} and {sequence} disagree")


def _sibling_or_fork(other: VerifiedFrame, chosen: VerifiedFrame) -> None:
    if (other.frame.prev_blob_id, other.frame.prev_frame_hash) != (chosen.frame.prev_blob_id, chosen.frame.prev_frame_hash):
        sequence = chosen.frame.sequence
        raise ForkDetected(f"sequence {sequence} has frames with different histories",
                           sequence=sequence, blob_ids=tuple(sorted((other.blob_id, chosen.blob_id))))
