"""The chain as the index of session chains: which Blob objects of the owner claim which (session, sequence).

Every frame's Blob carries ``memwal_session_id`` and ``memwal_session_seq`` (sidecar/protocol.py ``SessionTag``)
and is owned by the session's owner, so any relayer finds every session's head from Sui alone; no database
of ours takes part. A claim is only a claim: the walk (relayer/sessions/walk.py) checks it against the frame.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from chain.address import normalize_address
from chain.reader import ChainReader
from sidecar.protocol import SESSION_CLOSED_TAG, SESSION_ID_TAG, SESSION_SEQUENCE_TAG

_SEQUENCE = re.compile(r"^(0|[1-9][0-9]{0,15})$")


@dataclass(frozen=True)
class Claim:
    session_id: str
    sequence: int
    blob_id: str
    closed: bool


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    head_sequence: int
    head_blob_id: str  # the lowest blob id among the head's claims (the walk's choice between race siblings)
    head_claims: int  # more than one: appends raced (or someone injected a blob); a read tells which
    closed: bool  # the head's chain tag says so (the frame itself is the authority)


class SessionIndex:
    def __init__(self, chain: ChainReader, *, walrus_package_id: str, package_id: str) -> None:
        self._chain = chain
        self._walrus_package_id = walrus_package_id
        self._package_id = normalize_address(package_id)

    async def claims(self, owner: str, session_id: str | None = None) -> list[Claim]:
        """The owner's Blob objects tagged as frames of this package (of ``session_id`` only, when given)."""
        found = []
        for blob in await self._chain.owned_blobs(normalize_address(owner), self._walrus_package_id):
            tags = blob.metadata
            claimed_session = tags.get(SESSION_ID_TAG)
            sequence = tags.get(SESSION_SEQUENCE_TAG, "")
            if claimed_session is None or (session_id is not None and claimed_session != session_id):
                continue
            if not _SEQUENCE.match(sequence) or not _is_package(tags.get("memwal_package_id"), self._package_id):
                continue  # not a frame claim of ours
            found.append(Claim(claimed_session, int(sequence), blob.blob_id, tags.get(SESSION_CLOSED_TAG) == "true"))
        return found


def summaries(claims: Sequence[Claim]) -> list[SessionSummary]:
    """One summary per session, sorted by session id."""
    heads: dict[str, list[Claim]] = {}
    for claim in claims:
        current = heads.get(claim.session_id)
        if current is None or claim.sequence > current[0].sequence:
            heads[claim.session_id] = [claim]
        elif claim.sequence == current[0].sequence:
            current.append(claim)
    result = []
    for session_id in sorted(heads):
        head = min(heads[session_id], key=lambda claim: claim.blob_id)
        result.append(SessionSummary(session_id, head.sequence, head.blob_id, len(heads[session_id]), head.closed))
    return result


def _is_package(tagged: str | None, package_id: str) -> bool:
    if not tagged:
        return False
    try:
        return normalize_address(tagged) == package_id
    except ValueError:
        return False
