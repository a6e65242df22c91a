"""The wrapper every protected route goes through: bounded body → auth → rate limit → JSON → handler.

Handlers receive a ``RequestContext`` and return ``(status, payload)``; every ``ApiError`` becomes its
documented status with ``{"error": …}``, and anything unexpected becomes a 500 whose detail is only
logged, with the trace id (= request id) in the message so operators can find it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from relayer.auth import AuthFailure, AuthInfo
from relayer.errors import ApiError, PayloadTooLarge, RateLimited
from relayer.rate_limit import route_weight
from relayer.validation import parse_json_object

logger = logging.getLogger("memwal.http")

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
        raise PayloadTooLarge(f"Request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def protected(services, handler: Handler, *, route: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        request_id = request.scope.get("state", {}).get("request_id", "")
        try:
            try:
                body = await read_bounded_body(request, services.settings.max_body_bytes)
            except ClientDisconnect:
                return Response(status_code=400)
            try:
                auth = await services.authenticator.authenticate(
                    request.method, path_and_query(request), body, request.headers
                )
            except AuthFailure as failure:
                services.metrics.errors.labels("auth", route).inc()
                headers = {"x-auth-error": failure.auth_error} if failure.auth_error else {}
                return Response(status_code=failure.status, headers=headers)
            denial = await services.limiter.check(auth.public_key_hex, auth.owner, route_weight(request.url.path))
            if denial is not None:
                services.metrics.rate_limit_denials.labels(denial.layer.name, route).inc()
                raise RateLimited(
                    "Rate limit exceeded",
                    headers={"Retry-After": str(denial.layer.retry_after_seconds)},
                    extra={k: v for k, v in denial.body().items() if k != "error"},
                )
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
        except ApiError as error:
            if error.status >= 500:
                services.metrics.errors.labels(type(error).__name__, route).inc()
                error.message = f"{error.message} (traceId: {request_id})"
            return error_response(error)
        except Exception:
            services.metrics.errors.labels("internal", route).inc()
            logger.exception("unhandled error on %s (traceId: %s)", route, request_id)
            return JSONResponse({"error": f"Internal server error (traceId: {request_id})"}, status_code=500)

    return endpoint
