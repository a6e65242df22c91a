"""build_app(services): the relayer's Starlette application (routes of memwal.md §1, the owner read API, MCP).

Middleware, outermost first: request ids and HTTP metrics, ``Connection: close`` on answers given before the
request body was read to its end, CORS, then the error edge (relayer/http_errors.py) that answers whatever a
route raises. Every route is documented (relayer/openapi.py), and /openapi.json lists them all.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from relayer.connection_close import CloseAfterUnreadBody
from relayer.http_errors import ErrorEdge, starlette_http_error
from relayer.mcp.server import build_mcp
from relayer.observability import ObservabilityMiddleware
from relayer.openapi import operations_of
from relayer.routes import admin, analyze, forgetting, memories, owner_tokens, owners, public, search, sessions
from relayer.services import Services


def build_app(services: Services) -> Starlette:
    signed, settings = services.signed, services.settings
    route_list: list[BaseRoute] = []
    route_list += public.routes(
        monitor=services.health, settings=settings, embedding=services.embedder.description, llm=services.llm,
        operations=lambda: operations_of(route_list),
    )
    route_list += memories.routes(
        signed, preparer=services.preparer, runner=services.job_runner, jobs=services.jobs, storage=services.storage,
        package_id=settings.package_id, metadata=services.metadata,
    )
    route_list += search.routes(signed, embedder=services.embedder, reader=services.reader, vectors=services.vectors, llm=services.llm,
                                metadata=services.metadata)
    route_list += analyze.routes(
        signed, embedder=services.embedder, reader=services.reader, llm=services.llm, limiter=services.limiter,
        preparer=services.preparer, runner=services.job_runner, storage=services.storage,
    )
    route_list += admin.routes(
        signed, sidecar=services.sidecar, reader=services.reader, vectors=services.vectors, embedder=services.embedder,
        package_id=settings.package_id, forgetting=services.forgetting,
    )
    route_list += owners.routes(
        services.owner_reads, namespace_index=services.namespaces, memory_index=services.memories, chain=services.chain,
    )
    route_list += owner_tokens.routes(services.token_issuance)
    route_list += sessions.routes(signed, chains=services.sessions)
    mcp = build_mcp(services)  # /api/mcp and, with OAUTH_ISSUER_URL, the OAuth 2.1 routes (relayer/mcp/)
    route_list += mcp.routes
    route_list += forgetting.routes(signed, store=services.forgetting)

    def route_of(scope: Scope) -> str:
        for route in route_list:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return getattr(route, "path", "unknown")
        return "unknown"

    middleware = [
        Middleware(ObservabilityMiddleware, metrics=services.metrics, route_of=route_of),
        Middleware(CloseAfterUnreadBody),
    ]
    if settings.allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.allowed_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["*"],
                expose_headers=["x-request-id", "retry-after", "x-auth-error"],
            )
        )
    middleware.append(
        Middleware(ErrorEdge, metrics=services.metrics, route_of=route_of, retry_after_seconds=settings.retry_after_seconds)
    )
    app = Starlette(routes=route_list, middleware=middleware, exception_handlers={HTTPException: starlette_http_error})
    app.state.mcp = mcp  # start_relayer runs its session manager (relayer/serve.py)
    return app
