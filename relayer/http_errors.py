"""The relayer's one error edge: every known failure → HTTP status, JSON body and headers, in one table.

``answer_for(exc)`` is the mapping (the model is httpx's ``map_httpcore_exceptions``): the relayer's own tree
(relayer/errors.py), the storage tree (relayer/database/errors.py) and chain/errors.py. ``ErrorEdge`` is the
ASGI middleware that applies it to whatever a route raises, logs what must not be sent, and counts errors.
Bodies are ``{"error": message}`` as upstream's; auth failures keep upstream's empty bodies; outages are 503
with ``Retry-After``; anything unknown is a 500 whose detail is only logged, with the trace id (= request id)
in the message so operators can find it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chain.errors import ChainError, ChainUnavailable
from relayer.database.errors import (
    ConstraintViolation,
    DatabaseUnavailable,
    InvalidQuery,
    QuotaExceeded,
)
from relayer.errors import (
    AuthRejected,
    AuthUpstreamUnavailable,
    BodyTimeout,
    BodyTooLarge,
    EgressPolicyRefusal,
    FeatureUnavailable,
    FieldError,
    ForeignCiphertext,
    InvalidRequest,
    LegacySdk,
    NotFound,
    NotOwner,
    Outage,
    RateLimited,
    SealAccessDenied,
    SealSessionInvalid,
    SidecarRejected,
    UnsupportedContentType,
    UpstreamFailed,
)
from relayer.observability import Metrics
from relayer.sessions.errors import ChainTampered, SessionConflict

logger = logging.getLogger("memwal.http")

AUTH_UPSTREAM_UNAVAILABLE = "AUTH_UPSTREAM_UNAVAILABLE"  # the official SDK retries on this x-auth-error
UNAVAILABLE_MESSAGE = "Upstream temporarily unavailable"
INTERNAL_MESSAGE = "Internal server error"


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    body: dict[str, object] | None  # None: an empty body (auth failures, as upstream)
    headers: dict[str, str] = field(default_factory=dict)
    metric_kind: str = ""  # memwal_errors_total{kind}; empty = not counted
    log_detail: str | None = None  # logged (never sent) when set

    def response(self) -> Response:
        if self.body is None:
            return Response(status_code=self.status, headers=self.headers)
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def _client_error(status: int, message: str) -> ErrorAnswer:
    return ErrorAnswer(status, {"error": message})


def _outage(exc: Exception, trace_id: str, retry_after_seconds: int, **headers: str) -> ErrorAnswer:
    return ErrorAnswer(
        503,
        {"error": f"{UNAVAILABLE_MESSAGE} (traceId: {trace_id})"},
        {"Retry-After": str(retry_after_seconds), **headers},
        metric_kind=type(exc).__name__,
        log_detail=f"{type(exc).__name__}: {exc}",
    )


_INVALID_REQUEST_STATUS: dict[type[InvalidRequest], int] = {
    UnsupportedContentType: 415,
    FieldError: 422,
    BodyTooLarge: 413,
    BodyTimeout: 408,
}
# These answers are sent before the body was read to its end, so the connection cannot carry another request.
_CLOSES_CONNECTION = {408, 413}


def answer_for(exc: BaseException, *, trace_id: str, retry_after_seconds: int) -> ErrorAnswer:
    """The HTTP answer for ``exc``; unknown exceptions are a 500 with only the trace id."""
    # --- the client's mistakes and refusals ---
    if isinstance(exc, InvalidRequest):
        status = _INVALID_REQUEST_STATUS.get(type(exc), 400)
        headers = {"Connection": "close"} if status in _CLOSES_CONNECTION else {}
        return ErrorAnswer(status, {"error": exc.message}, headers)
    if isinstance(exc, AuthRejected):
        headers = {"x-auth-error": exc.auth_error} if exc.auth_error else {}
        return ErrorAnswer(401, None, headers, metric_kind="auth")
    if isinstance(exc, LegacySdk):
        return ErrorAnswer(426, None, metric_kind="auth")
    if isinstance(exc, RateLimited):
        return ErrorAnswer(
            429, {"error": exc.message, **exc.details()}, {"Retry-After": str(exc.retry_after_seconds)}
        )
    if isinstance(exc, NotFound):
        return _client_error(404, exc.message)
    if isinstance(exc, SessionConflict):  # the chain verifies; this request conflicts with it
        return ErrorAnswer(409, {"error": exc.message, **exc.details()})
    if isinstance(exc, ChainTampered):  # the stored chain does not verify: never served as history
        return ErrorAnswer(422, {"error": exc.message, **exc.details()}, metric_kind="session_chain_tampered",
                           log_detail=exc.message)
    if isinstance(exc, NotOwner | ForeignCiphertext):
        return _client_error(403, exc.message)
    if isinstance(exc, SealSessionInvalid | SidecarRejected):
        return _client_error(400, exc.message)
    if isinstance(exc, SealAccessDenied | EgressPolicyRefusal):
        return _client_error(403, exc.message)
    if isinstance(exc, QuotaExceeded):
        return _client_error(402, str(exc))
    if isinstance(exc, InvalidQuery):
        return _client_error(400, str(exc))
    if isinstance(exc, ClientDisconnect):
        return ErrorAnswer(400, None)  # nobody is listening any more
    # --- outages: 503 + Retry-After ---
    if isinstance(exc, AuthUpstreamUnavailable):
        return _outage(exc, trace_id, retry_after_seconds, **{"x-auth-error": AUTH_UPSTREAM_UNAVAILABLE})
    if isinstance(exc, Outage | DatabaseUnavailable | ChainUnavailable):
        return _outage(exc, trace_id, retry_after_seconds)
    # --- known faults that are not the client's ---
    if isinstance(exc, FeatureUnavailable):
        return ErrorAnswer(501, {"error": exc.message}, metric_kind=type(exc).__name__)
    if isinstance(exc, UpstreamFailed | ChainError):
        return ErrorAnswer(
            502,
            {"error": f"Upstream request failed (traceId: {trace_id})"},
            metric_kind=type(exc).__name__,
            log_detail=f"{type(exc).__name__}: {exc}",
        )
    if isinstance(exc, ConstraintViolation):
        return ErrorAnswer(409, {"error": "Conflicting write"}, metric_kind="ConstraintViolation", log_detail=str(exc))
    return ErrorAnswer(500, {"error": f"{INTERNAL_MESSAGE} (traceId: {trace_id})"}, metric_kind="internal")


async def starlette_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong method), in our body shape."""
    if not isinstance(exc, HTTPException):  # only registered for HTTPException
        raise exc
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


class ErrorEdge:
    """ASGI middleware: maps anything a route raises before its response starts (see ``answer_for``)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, route_of: Callable[[Scope], str], retry_after_seconds: int) -> None:
        self.app = app
        self.metrics = metrics
        self.route_of = route_of
        self.retry_after_seconds = retry_after_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            trace_id = scope.get("state", {}).get("request_id", "")
            answer = answer_for(exc, trace_id=trace_id, retry_after_seconds=self.retry_after_seconds)
            route = self.route_of(scope)
            if answer.status == 500:
                logger.error("unhandled error on %s (traceId: %s)", route, trace_id, exc_info=exc)
            elif answer.log_detail:
                logger.warning("%s on %s (traceId: %s): %s", answer.status, route, trace_id, answer.log_detail)
            if answer.metric_kind:
                self.metrics.errors.labels(answer.metric_kind, route).inc()
            await answer.response()(scope, receive, send)

