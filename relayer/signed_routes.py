"""The wrapper every signed route goes through: bounded body → auth + rate limit → typed body → handler.

Handlers receive a ``RequestContext`` whose ``body`` is the route's request model, already validated, and
return the route's response model. Nothing here answers an error: every failure is raised as a relayer error
and relayer/http_errors.py (the ErrorEdge middleware) maps it. Each route is a ``DocumentedRoute``, so
/openapi.json describes exactly what is registered here.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memwal_common.stage_timing import DISABLED as STAGES_OFF
from memwal_common.stage_timing import StageTimer
from relayer.api_models import ResponseModel
from relayer.auth import Authenticator, AuthInfo
from relayer.errors import BodyTimeout, BodyTooLarge, InvalidValue, RateLimited
from relayer.observability import Metrics
from relayer.openapi import DocumentedRoute, Operation, QueryParameter
from relayer.rate_limit import route_weight
from relayer.validation import parse_json_object, validate_request

RequestT = TypeVar("RequestT")  # the route's request model, or None for a GET
Handler = Callable[["RequestContext[Any]"], Awaitable[ResponseModel]]
_CONTENT_LENGTH = re.compile(r"^[0-9]{1,19}$")


@dataclass(frozen=True)
class RequestContext(Generic[RequestT]):
    auth: AuthInfo
    body: RequestT
    request_id: str
    path: str
    path_params: dict[str, str]
    query: dict[str, str]


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int  # larger bodies are refused with 413
    read_timeout_seconds: float  # grace for the first bytes of a body …
    min_bytes_per_second: int  # … after which it must keep arriving at least this fast on average (else 408)
    drain_bytes: int = 0  # an oversized body up to this size is read and dropped before the 413 (see below)

    def deadline_after(self, received: int) -> float:
        """Seconds from the start of the body by which ``received`` bytes must have arrived."""
        return self.read_timeout_seconds + received / self.min_bytes_per_second


def path_and_query(request: Request) -> str:
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
    query = request.scope.get("query_string") or b""
    text = raw_path.decode("latin-1")
    return f"{text}?{query.decode('latin-1')}" if query else text


def declared_length(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not _CONTENT_LENGTH.match(declared):
        raise InvalidValue("Content-Length must be a decimal number")
    return int(declared)


async def read_bounded_body(request: Request, limits: BodyLimits) -> bytes:
    """The whole body, refused when it is larger than ``max_bytes`` (413) or arrives too slowly (408)."""
    too_large = BodyTooLarge(f"Request body exceeds {limits.max_bytes} bytes")
    declared = declared_length(request)
    loop = asyncio.get_running_loop()
    started = loop.time()
    stream = request.stream().__aiter__()
    if declared is not None and declared > limits.max_bytes:
        if declared <= limits.drain_bytes:
            await _drain(stream, started, 0, limits)
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while (chunk := await _next_chunk(stream, started, size, limits)) is not None:
        size += len(chunk)
        if size > limits.max_bytes:
            await _drain(stream, started, size, limits)
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _next_chunk(stream: AsyncIterator[bytes], started: float, received: int, limits: BodyLimits) -> bytes | None:
    """The next chunk, or None at the end. It must arrive before the deadline for everything received so far
    plus that chunk's worth of grace: a client trickling bytes slower than the minimum rate is cut off (408)."""
    remaining = started + limits.deadline_after(received) - asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout(max(remaining, 0.0)):
            return await anext(stream)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        raise BodyTimeout(
            f"Request body did not arrive within {limits.read_timeout_seconds:g} s "
            f"at {limits.min_bytes_per_second} bytes/s or more"
        ) from None


async def _drain(stream: AsyncIterator[bytes], started: float, received: int, limits: BodyLimits) -> None:
    """Read and drop the rest of an oversized body, up to ``drain_bytes`` in all and within the body deadline.

    Closing a connection with unread bytes makes the kernel reset it, and a reset can destroy the 413 before
    the client reads it; draining first (as servers' "lingering close" does) lets the answer arrive. A body
    past the cap, or one that stalls, is answered at once: its client may then see the reset instead.
    """
    with contextlib.suppress(BodyTimeout):
        while received <= limits.drain_bytes and (chunk := await _next_chunk(stream, started, received, limits)) is not None:
            received += len(chunk)


@dataclass(frozen=True)
class SignedRoutes:
    """What every signed route needs before its handler runs."""

    authenticator: Authenticator  # checks the rate limits too (one Redis round trip with the nonce when it can)
    metrics: Metrics
    body_limits: BodyLimits
    stage_timer: StageTimer = STAGES_OFF  # STAGE_TIMING_LOGS: authentication and handler time per request id

    def route(
        self,
        path: str,
        handler: Handler,
        *,
        summary: str,
        request: type[BaseModel] | None,
        response: type[ResponseModel],
        status: int = 200,
        errors: Sequence[int] = (),
        query: Sequence[QueryParameter] = (),
        links: dict[str, dict[str, Any]] | None = None,
    ) -> DocumentedRoute:
        """A signed route: POST with a JSON body validated as ``request``, or GET when ``request`` is None."""
        operation = Operation(
            method="POST" if request is not None else "GET",
            path=path,
            summary=summary,
            response=response,
            status=status,
            request=request,
            signed=True,
            errors=tuple(errors),
            query=tuple(query),
            links=links or {},
            rate_limit=f"write budget, weight {route_weight(path)}",
        )
        return DocumentedRoute(operation, self._endpoint(handler, operation))

    def _endpoint(self, handler: Handler, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = request.scope.get("state", {}).get("request_id", "")
            body = await read_bounded_body(request, self.body_limits)
            try:
                with self.stage_timer.stage("request.auth", request_id):
                    auth = await self.authenticator.authenticate(
                        request.method, path_and_query(request), body, request.headers, weight=route_weight(request.url.path)
                    )
            except RateLimited as denied:
                self.metrics.rate_limit_denials.labels(denied.layer, operation.path).inc()
                raise
            payload: BaseModel | None = None
            if operation.request is not None:
                payload = validate_request(operation.request, parse_json_object(body, request.headers.get("content-type")))
            context = RequestContext(
                auth=auth,
                body=payload,
                request_id=request_id,
                path=request.url.path,
                path_params=dict(request.path_params),
                query=dict(request.query_params),
            )
            with self.stage_timer.stage("request.handler", request_id):
                result = await handler(context)
            return JSONResponse(result.to_json(), status_code=operation.status)

        return endpoint
