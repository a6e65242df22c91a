"""Session-chain helpers for the SDK clients: append a turn, read a verified window, list, close.

The relayer verifies every link of a window before answering (relayer/sessions/walk.py), so what these
return is the chain as it stands on Walrus and Sui; a chain that does not verify comes back as
:class:`SessionChainTampered` (422), a conflict (stale ``expected_head``, a closed session, a fork) as
:class:`SessionConflict` (409) with the relayer's details (e.g. the current head).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from memwal import MemWalError

APPEND_PATH = "/api/sessions/append"
READ_PATH = "/api/sessions/read"
LIST_PATH = "/api/sessions/list"
CLOSE_PATH = "/api/sessions/close"
MAX_ERROR_BODY = 64 * 1024


class SessionChainError(MemWalError):  # type: ignore[misc]  # the SDK ships no type information
    """The relayer refused a session operation; ``details`` is its JSON body (``kind`` names the case)."""

    def __init__(self, status: int, details: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {details.get('error', '')}")
        self.status = status
        self.details = details
        self.kind = str(details.get("kind", ""))


class SessionConflict(SessionChainError):
    """409: head_moved (``details['head_sequence']``), closed, busy or fork."""


class SessionChainTampered(SessionChainError):
    """422: gap, reorder, substitution, wrong_session, wrong_owner or malformed_frame."""


@dataclass(frozen=True)
class AppendedTurn:
    session_id: str
    sequence: int
    blob_id: str
    prev_blob_id: str | None


@dataclass(frozen=True)
class Turn:
    sequence: int
    role: str
    text: str
    metadata: dict[str, str]
    blob_id: str
    closed: bool


@dataclass(frozen=True)
class SessionWindow:
    session_id: str
    head_sequence: int
    head_blob_id: str
    closed: bool
    turns: list[Turn]
    siblings: list[str]


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    head_sequence: int
    head_blob_id: str
    head_claims: int
    closed: bool


class SessionChains:
    """Mixed into a ``memwal.MemWal`` subclass: uses the SDK's signed request (and its x-seal-session)."""

    async def _session_call(self, path: str, body: dict[str, Any], *, seal: bool = True) -> dict[str, Any]:
        try:
            reply: dict[str, Any] = await self._signed_request("POST", path, body, include_seal_session=seal)  # type: ignore[attr-defined]
        except MemWalError as exc:
            status = getattr(exc, "status", None)
            if status not in (409, 422):
                raise
            try:
                details = json.loads(str(getattr(exc, "body", ""))[:MAX_ERROR_BODY])
            except ValueError:
                details = {}
            details = details if isinstance(details, dict) else {}
            raise (SessionConflict if status == 409 else SessionChainTampered)(status, details) from None
        return reply

    async def append_turn(self, session_id: str, text: str, *, role: str = "user", metadata: dict[str, str] | None = None,
                          expected_head: int | str | None = None) -> AppendedTurn:
        """Append one turn; ``expected_head`` (a sequence, -1 for a new session, or a blob id) makes it compare-and-append."""
        body: dict[str, Any] = {"session_id": session_id, "role": role, "text": text}
        if metadata:
            body["metadata"] = metadata
        if expected_head is not None:
            body["expected_head"] = expected_head
        return _appended(await self._session_call(APPEND_PATH, body))

    async def read_window(self, session_id: str, *, last_n: int | None = None, since_sequence: int | None = None) -> SessionWindow:
        """The last ``last_n`` turns (default 20), or every turn from ``since_sequence`` on, verified."""
        body: dict[str, Any] = {"session_id": session_id}
        if last_n is not None:
            body["last_n"] = last_n
        if since_sequence is not None:
            body["since_sequence"] = since_sequence
        data = await self._session_call(READ_PATH, body)
        return SessionWindow(
            session_id=data["session_id"], head_sequence=data["head_sequence"], head_blob_id=data["head_blob_id"],
            closed=data["closed"], turns=[Turn(**turn) for turn in data["turns"]], siblings=list(data["siblings"]),
        )

    async def list_sessions(self) -> list[SessionSummary]:
        """The caller's sessions, as chain metadata shows them (no decryption)."""
        data = await self._session_call(LIST_PATH, {}, seal=False)
        return [SessionSummary(**item) for item in data["sessions"]]

    async def close_session(self, session_id: str, *, expected_head: int | str | None = None) -> AppendedTurn:
        """Append the closing frame; later appends answer 409 closed."""
        body: dict[str, Any] = {"session_id": session_id}
        if expected_head is not None:
            body["expected_head"] = expected_head
        return _appended(await self._session_call(CLOSE_PATH, body))


class SessionChainsSync:
    """The same helpers for ``memwal.MemWalSync`` subclasses (``self._inner`` is the async client)."""

    def append_turn(self, session_id: str, text: str, **options: Any) -> AppendedTurn:
        return self._run(self._inner.append_turn(session_id, text, **options))  # type: ignore[attr-defined,no-any-return]

    def read_window(self, session_id: str, **window: Any) -> SessionWindow:
        return self._run(self._inner.read_window(session_id, **window))  # type: ignore[attr-defined,no-any-return]

    def list_sessions(self) -> list[SessionSummary]:
        return self._run(self._inner.list_sessions())  # type: ignore[attr-defined,no-any-return]

    def close_session(self, session_id: str, **options: Any) -> AppendedTurn:
        return self._run(self._inner.close_session(session_id, **options))  # type: ignore[attr-defined,no-any-return]


def _appended(data: dict[str, Any]) -> AppendedTurn:
    return AppendedTurn(data["session_id"], data["sequence"], data["blob_id"], data.get("prev_blob_id"))
