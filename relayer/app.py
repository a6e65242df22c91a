"""build_app(services): the relayer's Starlette application (routes of memwal.md §1 plus /v1 namespaces)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match

from relayer.observability import ObservabilityMiddleware
from relayer.routes import admin, analyze, memories, public, search


def build_app(services) -> Starlette:
    route_list = (
        public.routes(services)
        + memories.routes(services)
        + search.routes(services)
        + analyze.routes(services)
        + admin.routes(services)
    )

    def route_of(scope) -> str:
        for route in route_list:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.path
        return "unknown"

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    middleware = [Middleware(ObservabilityMiddleware, metrics=services.metrics, route_of=route_of)]
    if services.settings.allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(services.settings.allowed_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["*"],
                expose_headers=["x-request-id", "retry-after"],
            )
        )
    return Starlette(routes=route_list, middleware=middleware, exception_handlers={HTTPException: http_error})
