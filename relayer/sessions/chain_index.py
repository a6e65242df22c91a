"""The chain as the index of session chains: which Blob objects of the owner claim which (session, sequence).

Every frame's Blob carries ``memwal_session_id`` and ``memwal_session_seq`` (sidecar/protocol.py ``SessionTag``)
and is owned by the session's owner, so any relayer finds every session's head from Sui alone; no database
of ours takes part. A claim is only a claim: the walk (relayer/sessions/walk.py) checks it against the frame.

Listing every Blob the owner holds costs O(the owner's blobs) per call, so a backend that can answer "what
changed for this owner after checkpoint C" (``chain.reader.OwnerChangeFeed``: GraphQL) is asked that
instead: each owner's claims are kept here, in the enclave's memory, with the checkpoint they are true at,
and brought up to date from the chain's changes since then. The answer is exactly as fresh as a full listing
(both are the chain at its latest checkpoint) and costs O(the owner's activity since the last look), so an
append no longer grows with the session. Nothing of it is in PostgreSQL: an operator cannot edit it, and a
restart only costs one full listing per owner. ``SESSION_INDEX_CACHE_CLAIMS`` bounds the memory.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from chain.address import normalize_address
from chain.reader import ChainReader, OwnedBlob, OwnerChangeFeed
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


@dataclass
class _OwnerClaims:
    checkpoint: int  # the claims are the chain's as of this checkpoint
    by_object: dict[str, Claim]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    counted: int = 0  # how many of by_object the index's running total holds


class SessionIndex:
    def __init__(self, chain: ChainReader, *, walrus_package_id: str, package_id: str, cache_claims: int) -> None:
        self._chain = chain
        self._walrus_package_id = walrus_package_id
        self._package_id = normalize_address(package_id)
        self._feed = chain if cache_claims > 0 and isinstance(chain, OwnerChangeFeed) else None
        self._cache_claims = cache_claims
        self._owners: OrderedDict[str, _OwnerClaims] = OrderedDict()  # least recently used first
        self._kept_claims = 0  # the sum of every kept owner's ``counted``
        self._loading: dict[str, asyncio.Lock] = {}

    async def claims(self, owner: str, session_id: str | None = None) -> list[Claim]:
        """The owner's Blob objects tagged as frames of this package (of ``session_id`` only, when given)."""
        owner = normalize_address(owner)
        if self._feed is None:
            found = self._claims_by_object(await self._chain.owned_blobs(owner, self._walrus_package_id))
        else:
            found = await self._current(owner, self._feed)
        return [claim for claim in found.values() if session_id is None or claim.session_id == session_id]

    async def _current(self, owner: str, feed: OwnerChangeFeed) -> dict[str, Claim]:
        cached = self._owners.get(owner)
        if cached is None:
            lock = self._loading.setdefault(owner, asyncio.Lock())
            async with lock:  # one full listing per owner, however many requests arrive at once
                cached = self._owners.get(owner)
                if cached is None:
                    cached = await self._list_afresh(owner, feed)
                    self._keep(owner, cached)
            self._loading.pop(owner, None)
            return dict(cached.by_object)
        async with cached.lock:
            changes = await feed.owner_blob_changes(owner, self._walrus_package_id, cached.checkpoint)
            if not changes.complete:
                fresh = await self._list_afresh(owner, feed)
                cached.by_object, cached.checkpoint = fresh.by_object, fresh.checkpoint
            elif changes.checkpoint >= cached.checkpoint:  # a lagging replica's answer never moves the claims back
                for change in changes.changes:
                    claim = None if change.blob is None else self._claim(change.blob)
                    if claim is None:
                        cached.by_object.pop(change.object_id, None)
                    else:
                        cached.by_object[change.object_id] = claim
                cached.checkpoint = changes.checkpoint
            self._keep(owner, cached)
            return dict(cached.by_object)

    async def _list_afresh(self, owner: str, feed: OwnerChangeFeed) -> _OwnerClaims:
        # The checkpoint is read first: the listing is at least that new, and changes after it are replayed
        # on top of it in order next time, which ends at each object's newest state either way.
        checkpoint = await feed.latest_checkpoint()
        return _OwnerClaims(checkpoint, self._claims_by_object(await self._chain.owned_blobs(owner, self._walrus_package_id)))

    def _keep(self, owner: str, claims: _OwnerClaims) -> None:
        replaced = self._owners.get(owner)
        if replaced is not None and replaced is not claims:  # another request listed this owner afresh meanwhile
            self._kept_claims -= replaced.counted
            replaced.counted = 0
        self._kept_claims += len(claims.by_object) - claims.counted
        claims.counted = len(claims.by_object)
        self._owners[owner] = claims
        self._owners.move_to_end(owner)
        while self._kept_claims > self._cache_claims and self._owners:
            _, evicted = self._owners.popitem(last=False)  # an owner bigger than the budget evicts itself too
            self._kept_claims -= evicted.counted
            evicted.counted = 0

    def _claims_by_object(self, blobs: Iterable[OwnedBlob]) -> dict[str, Claim]:
        return {blob.object_id: claim for blob in blobs if (claim := self._claim(blob)) is not None}

    def _claim(self, blob: OwnedBlob) -> Claim | None:
        tags = blob.metadata
        claimed_session = tags.get(SESSION_ID_TAG)
        sequence = tags.get(SESSION_SEQUENCE_TAG, "")
        if claimed_session is None or not _SEQUENCE.match(sequence):
            return None
        if not _is_package(tags.get("memwal_package_id"), self._package_id):
            return None  # not a frame claim of ours
        return Claim(claimed_session, int(sequence), blob.blob_id, tags.get(SESSION_CLOSED_TAG) == "true")


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
