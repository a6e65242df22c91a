"""The wrapper every signed route goes through: bounded body → auth → rate limit → JSON → handler.

Handlers receive a ``RequestContext`` and return ``(status, payload)``. Nothing here answers an error: every
failure is raised as a relayer error and relayer/http_errors.py (the ErrorEdge middleware) maps it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relayer.auth import Authenticator, AuthInfo
from relayer.errors import BodyTooLarge
from relayer.observability import Metrics
from relayer.rate_limit import RateLimiter, route_weight
from relayer.validation import parse_json_object

Handler = Callable[["RequestContext"], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class RequestContext:
    auth: AuthInfo
    body: dict[str, Any]
    request_id: str
    path: str
    path_params: dict[str, str]
    query: dict[str, str]


def path_and_query(request: Request) -> str:
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
    query = request.scope.get("query_string") or b""
    text = raw_path.decode("latin-1")
    return f"{text}?{query.decode('latin-1')}" if query else text


async def read_bounded_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"Request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"Request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class SignedRoutes:
    """What every signed route needs before its handler runs."""

    authenticator: Authenticator
    limiter: RateLimiter
    metrics: Metrics
    max_body_bytes: int

    def route(self, path: str, handler: Handler, methods: Sequence[str] = ("POST",)) -> Route:
        return Route(path, self._endpoint(handler, path), methods=list(methods))

    def _endpoint(self, handler: Handler, route: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = request.scope.get("state", {}).get("request_id", "")
            body = await read_bounded_body(request, self.max_body_bytes)
            auth = await self.authenticator.authenticate(request.method, path_and_query(request), body, request.headers)
            denial = await self.limiter.check(auth.public_key_hex, auth.owner, route_weight(request.url.path))
            if denial is not None:
                self.metrics.rate_limit_denials.labels(denial.layer.name, route).inc()
                raise denial.error()
            payload = parse_json_object(body, request.headers.get("content-type")) if request.method != "GET" else {}
            context = RequestContext(
                auth=auth,
                body=payload,
                request_id=request_id,
                path=request.url.path,
                path_params=dict(request.path_params),
                query=dict(request.query_params),
            )
            status, result = await handler(context)
            return JSONResponse(result, status_code=status)

        return endpoint
