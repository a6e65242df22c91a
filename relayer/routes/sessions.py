"""Session chains: append a turn, read a verified window, list the caller's sessions, close a session.

Reads and appends decrypt (an append hashes the head frame's plaintext), so both need x-seal-session; the
list comes from chain metadata alone. Chain errors (fork, gap, reorder, substitution …) are typed in
relayer/sessions/errors.py and answered by relayer/http_errors.py.
"""

from __future__ import annotations

from starlette.routing import Route

from relayer.api_models import (
    SessionAppendBody,
    SessionAppendRequest,
    SessionCloseRequest,
    SessionListBody,
    SessionListRequest,
    SessionReadBody,
    SessionReadRequest,
    SessionSummaryBody,
    SessionTurnBody,
)
from relayer.memory_decryption import seal_session
from relayer.sessions.chains import Appended, SessionChains
from relayer.signed_routes import Handler, RequestContext, SignedRoutes

CLOSING_TEXT = "session closed"
CHAIN_ERRORS = (404, 409, 422, 502)


def _appended(result: Appended) -> SessionAppendBody:
    return SessionAppendBody(session_id=result.session_id, sequence=result.sequence, blob_id=result.blob_id,
                             prev_blob_id=result.prev_blob_id)


def append(chains: SessionChains) -> Handler:
    async def handle(ctx: RequestContext[SessionAppendRequest]) -> SessionAppendBody:
        body = ctx.body
        return _appended(await chains.append(
            ctx.auth, body.session_id, role=body.role, text=body.text, metadata=body.metadata or {},
            expected_head=body.expected_head, seal_session=seal_session(ctx.auth), request_id=ctx.request_id,
        ))

    return handle


def read(chains: SessionChains) -> Handler:
    async def handle(ctx: RequestContext[SessionReadRequest]) -> SessionReadBody:
        body = ctx.body
        window = await chains.read(ctx.auth, body.session_id, last_n=body.last_n, since_sequence=body.since_sequence,
                                   seal_session=seal_session(ctx.auth), request_id=ctx.request_id)
        turns = [
            SessionTurnBody(sequence=item.frame.sequence, role=item.frame.role, text=item.frame.text,
                            metadata=dict(item.frame.metadata), blob_id=item.blob_id, closed=item.frame.closed)
            for item in window.frames
            if body.since_sequence is None or item.frame.sequence >= body.since_sequence
        ]
        return SessionReadBody(session_id=body.session_id, head_sequence=window.head.frame.sequence,
                               head_blob_id=window.head.blob_id, closed=window.head.frame.closed, turns=turns,
                               siblings=list(window.siblings))

    return handle


def list_sessions(chains: SessionChains) -> Handler:
    async def handle(ctx: RequestContext[SessionListRequest]) -> SessionListBody:
        return SessionListBody(sessions=[
            SessionSummaryBody(session_id=item.session_id, head_sequence=item.head_sequence, head_blob_id=item.head_blob_id,
                               head_claims=item.head_claims, closed=item.closed)
            for item in await chains.sessions(ctx.auth.owner)
        ])

    return handle


def close(chains: SessionChains) -> Handler:
    async def handle(ctx: RequestContext[SessionCloseRequest]) -> SessionAppendBody:
        body = ctx.body
        return _appended(await chains.append(
            ctx.auth, body.session_id, role="system", text=CLOSING_TEXT, metadata={}, expected_head=body.expected_head,
            seal_session=seal_session(ctx.auth), request_id=ctx.request_id, closing=True,
        ))

    return handle


def routes(signed: SignedRoutes, *, chains: SessionChains) -> list[Route]:
    return [
        signed.route("/api/sessions/append", append(chains), summary="Append a turn to a session chain",
                     request=SessionAppendRequest, response=SessionAppendBody, errors=(*CHAIN_ERRORS, 403)),
        signed.route("/api/sessions/read", read(chains), summary="Read a verified window of a session",
                     request=SessionReadRequest, response=SessionReadBody, errors=(*CHAIN_ERRORS, 403)),
        signed.route("/api/sessions/list", list_sessions(chains), summary="The caller's sessions, from chain metadata",
                     request=SessionListRequest, response=SessionListBody, errors=(502,)),
        signed.route("/api/sessions/close", close(chains), summary="Close a session with a final frame",
                     request=SessionCloseRequest, response=SessionAppendBody, errors=(*CHAIN_ERRORS, 403)),
    ]
