"""Append, read, list and close session chains: frames via the sidecar (Seal + Walrus), heads from the chain.

Append is compare-and-append, O(1) in the session's length (the index answers from the owner's chain
changes since its last look, relayer/sessions/chain_index.py): (1) take the
session's lock in Redis (only an optimisation: it serialises relayers that share Redis; without it the
race is settled below); (2) find the head from the chain's claims and verify it and
its link to the frame below (decrypting them with the caller's Seal session: the next frame hashes the
head's bytes); (3) refuse a stale ``expected_head`` (409 with the
current head) or a closed session; (4) Seal-encrypt the new frame for the owner and upload it, tagged with
session and sequence; (5) look at the chain again: if another blob claims the same sequence, the lowest blob
id wins (every reader picks the same), and a loser hears 409 with the winner as head.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from memwal_common.cache_errors import CACHE_ERRORS
from memwal_common.redis_client import RedisClient
from relayer.auth import AuthInfo
from relayer.errors import InvalidValue, NotFound, UpstreamUnavailable
from relayer.sessions.chain_index import SessionIndex, SessionSummary, summaries
from relayer.sessions.errors import Head, HeadMoved, SessionBusy, SessionClosed
from relayer.sessions.frames import Frame, Role, first_frame, next_frame
from relayer.sessions.limits import DEFAULT_WINDOW_TURNS, MAX_WINDOW_TURNS
from relayer.sessions.walk import FrameSource, Unreadable, VerifiedFrame, Window, read_window
from relayer.sidecar_client import SidecarApi
from sidecar.protocol import BlobStatus, SessionTag, UploadRequest

logger = logging.getLogger("memwal.sessions")

SESSION_NAMESPACE = "memwal-session"  # the memwal_namespace tag of frame blobs (restore skips them anyway)
LOCK_PREFIX = "memwal:session-lock:v1:"
LOCK_POLL_SECONDS = 0.05
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"


@dataclass(frozen=True)
class SessionLimits:
    lock_seconds: float  # an append's lock lives at most this long (a crashed holder frees it then)
    lock_wait_seconds: float  # an append waits this long for the lock, then answers 409 busy
    storage_epochs: int


@dataclass(frozen=True)
class Appended:
    session_id: str
    sequence: int
    blob_id: str
    prev_blob_id: str | None


class SidecarFrames(FrameSource):
    """Frames read and decrypted by the sidecar with the caller's Seal session."""

    def __init__(self, sidecar: SidecarApi, auth: AuthInfo, *, session: str, package_id: str, request_id: str | None) -> None:
        self._sidecar = sidecar
        self._auth = auth
        self._session = session
        self._package_id = package_id
        self._request_id = request_id

    async def fetch(self, blob_ids: Sequence[str]) -> Mapping[str, bytes | Unreadable]:
        if not blob_ids:
            return {}
        opened = await self._sidecar.open_blobs(blob_ids, package_id=self._package_id, account_id=self._auth.account_id,
                                                session=self._session, request_id=self._request_id)
        result: dict[str, bytes | Unreadable] = {}
        for blob_id in blob_ids:
            outcome = opened[blob_id]
            if outcome.plaintext is not None:
                result[blob_id] = outcome.plaintext
            elif outcome.status is BlobStatus.NOT_FOUND:
                result[blob_id] = Unreadable.NOT_FOUND
            elif outcome.status is BlobStatus.CORRUPT:
                result[blob_id] = Unreadable.CORRUPT
            else:
                raise UpstreamUnavailable(f"frame blob {blob_id} unavailable right now")
        return result


class SessionChains:
    def __init__(self, *, sidecar: SidecarApi, index: SessionIndex, cache: RedisClient | None, package_id: str,
                 limits: SessionLimits) -> None:
        self._sidecar = sidecar
        self._index = index
        self._cache = cache
        self._package_id = package_id
        self._limits = limits

    def _source(self, auth: AuthInfo, session: str, request_id: str | None) -> SidecarFrames:
        return SidecarFrames(self._sidecar, auth, session=session, package_id=self._package_id, request_id=request_id)

    async def append(self, auth: AuthInfo, session_id: str, *, role: Role, text: str, metadata: Mapping[str, str],
                     expected_head: int | str | None, seal_session: str, request_id: str | None,
                     closing: bool = False) -> Appended:
        owner = auth.owner
        async with self._lock(owner, session_id):  # (1)
            source = self._source(auth, seal_session, request_id)
            head = await self._head(source, owner, session_id)  # (2)
            current = None if head is None else Head(head.frame.sequence, head.blob_id)
            if expected_head is not None and not _matches(expected_head, current):  # (3)
                raise HeadMoved(f"session {session_id}: expected head {expected_head}, but it is "
                                f"{'empty' if current is None else f'{current.sequence} ({current.blob_id})'}", current)
            if head is not None and head.frame.closed:
                raise SessionClosed(f"session {session_id} is closed")
            if head is None and closing:
                raise NotFound(f"Session {session_id} not found")
            frame = (first_frame(session_id=session_id, owner=owner, role=role, text=text, metadata=metadata, closed=closing)
                     if head is None else
                     next_frame(head.frame, head.raw, head.blob_id, role=role, text=text, metadata=metadata, closed=closing))
            blob_id = await self._store(auth, frame, request_id)  # (4)
            await self._settle_race(owner, session_id, frame.sequence, blob_id)  # (5)
            return Appended(session_id, frame.sequence, blob_id, frame.prev_blob_id)

    async def read(self, auth: AuthInfo, session_id: str, *, last_n: int | None, since_sequence: int | None,
                   seal_session: str, request_id: str | None) -> Window:
        claims = await self._index.claims(auth.owner, session_id)
        heads = [claim.sequence for claim in claims]
        head_sequence = max(heads) if heads else -1
        if since_sequence is not None and head_sequence - since_sequence + 1 > MAX_WINDOW_TURNS:
            raise InvalidValue(f"since_sequence {since_sequence} asks for {head_sequence - since_sequence + 1} turns; "
                               f"one read returns at most {MAX_WINDOW_TURNS}")
        first = since_sequence if since_sequence is not None else head_sequence - (last_n or DEFAULT_WINDOW_TURNS) + 1
        return await read_window(self._source(auth, seal_session, request_id), claims, session_id=session_id,
                                 owner=auth.owner, first=first)

    async def sessions(self, owner: str) -> list[SessionSummary]:
        return summaries(await self._index.claims(owner))

    async def _head(self, source: FrameSource, owner: str, session_id: str) -> VerifiedFrame | None:
        claims = await self._index.claims(owner, session_id)
        if not claims:
            return None
        # The head and its link to the frame below are verified: a new frame never extends a head that does not link.
        window = await read_window(source, claims, session_id=session_id, owner=owner,
                                   first=max(claim.sequence for claim in claims) - 1)
        return window.head

    async def _store(self, auth: AuthInfo, frame: Frame, request_id: str | None) -> str:
        ciphertext = await self._sidecar.encrypt(frame.encode(), owner=auth.owner, package_id=self._package_id,
                                                 request_id=request_id)
        request = UploadRequest(
            data=ciphertext, owner=auth.owner, namespace=SESSION_NAMESPACE, package_id=self._package_id,
            epochs=self._limits.storage_epochs, job_id="session-" + hashlib.sha256(ciphertext).hexdigest()[:32],
            agent_id=auth.public_key_hex, session=SessionTag(frame.session_id, frame.sequence, frame.closed),
        )
        return (await self._sidecar.upload(request, request_id=request_id)).blob_id

    async def _settle_race(self, owner: str, session_id: str, sequence: int, blob_id: str) -> None:
        rivals = sorted(claim.blob_id for claim in await self._index.claims(owner, session_id) if claim.sequence == sequence)
        if rivals and rivals[0] < blob_id:
            raise HeadMoved(f"session {session_id}: another append took sequence {sequence} first",
                            Head(sequence, rivals[0]))

    @contextlib.asynccontextmanager
    async def _lock(self, owner: str, session_id: str) -> AsyncIterator[None]:
        key = f"{LOCK_PREFIX}{owner}:{session_id}"
        token = secrets.token_hex(16)
        held = False
        if self._cache is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._limits.lock_wait_seconds
            try:
                while not (held := bool(await self._cache.set(key, token, nx=True, px=int(self._limits.lock_seconds * 1000)))):
                    if loop.time() >= deadline:
                        raise SessionBusy(f"session {session_id}: another append is in progress; retry")
                    await asyncio.sleep(LOCK_POLL_SECONDS)
            except CACHE_ERRORS:
                logger.warning("session lock unavailable (Redis); the chain settles any race")
        try:
            yield
        finally:
            if held and self._cache is not None:
                with contextlib.suppress(*CACHE_ERRORS):
                    await self._cache.eval(_RELEASE, 1, key, token)


def _matches(expected: int | str, head: Head | None) -> bool:
    if isinstance(expected, int):
        return expected == (-1 if head is None else head.sequence)
    return head is not None and secrets.compare_digest(expected, head.blob_id)

