"""The wrapper every signed route goes through: bounded body → auth + rate limit → typed body → handler.

Handlers receive a ``RequestContext`` whose ``body`` is the route's request model, already validated, and
return the route's response model. Nothing here answers an error: every failure is raised as a relayer error
and relayer/http_errors.py (the ErrorEdge middleware) maps it. Each route is a ``DocumentedRoute``, so
/openapi.json describes exactly what is registered here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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
    declared = declared_length(request)
    if declared is not None and declared > limits.max_bytes:
        raise BodyTooLarge(f"Request body exceeds {limits.max_bytes} bytes")
    loop = asyncio.get_running_loop()
    started = loop.time()
    chunks: list[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    while True:
        # The next chunk must arrive before the deadline for everything received so far plus that chunk's
        # worth of grace: a client trickling bytes slower than the minimum rate is cut off.
        remaining = started + limits.deadline_after(size) - loop.time()
        try:
            async with asyncio.timeout(max(remaining, 0.0)):
                chunk = await anext(stream)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise BodyTimeout(
                f"Request body did not arrive within {limits.read_timeout_seconds:g} s "
                f"at {limits.min_bytes_per_second} bytes/s or more"
            ) from None
        size += len(chunk)
        if size > limits.max_bytes:
            raise BodyTooLarge(f"Request body exceeds {limits.max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class SignedRoutes:
    """What every signed route needs before its handler runs."""

    authenticator: Authenticator  # checks the rate limits too (one Redis round trip with the nonce when it can)
    metrics: Metrics
    body_limits: BodyLimits

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
        )
        return DocumentedRoute(operation, self._endpoint(handler, operation))

    def _endpoint(self, handler: Handler, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = request.scope.get("state", {}).get("request_id", "")
            body = await read_bounded_body(request, self.body_limits)
            try:
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
            result = await handler(context)
            return JSONResponse(result.to_json(), status_code=operation.status)

        return endpoint
