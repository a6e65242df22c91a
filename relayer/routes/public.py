"""Unauthenticated routes: /health, /version, /config and /openapi.json.

/metrics is not here: it is served on the operator-only listener (METRICS_BIND, relayer/metrics_listener.py),
never on the client port.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from relayer import __version__
from relayer.api_models import ConfigBody, DependencyStatus, HealthBody, VersionBody
from relayer.compatibility import API_VERSION, version_document
from relayer.health import HealthMonitor
from relayer.llm import PROMPT_VERSIONS
from relayer.openapi import DocumentedRoute, Operation, openapi_document
from relayer.settings import Settings

Endpoint = Callable[[Request], Awaitable[Response]]


def health(monitor: HealthMonitor, retry_after_seconds: int) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        snapshot = monitor.snapshot()
        body = HealthBody(
            status="ok" if snapshot.healthy else "degraded",
            version=__version__,
            mode="production",
            prompt_versions=dict(PROMPT_VERSIONS),
            write_ready=snapshot.write_ready,
            dependencies={
                name: DependencyStatus(
                    ok=state.ok,
                    checked_at=state.checked_at.isoformat().replace("+00:00", "Z") if state.checked_at else None,
                    error=state.error,
                )
                for name, state in snapshot.dependencies.items()
            },
            **version_document(),
        )
        headers = {} if snapshot.healthy else {"Retry-After": str(retry_after_seconds)}
        return JSONResponse(body.to_json(), status_code=200 if snapshot.healthy else 503, headers=headers)

    return endpoint


async def version(request: Request) -> Response:
    return JSONResponse(VersionBody.model_validate(version_document()).to_json())


def config(settings: Settings) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        body = ConfigBody(
            packageId=settings.package_id,
            network=settings.sui_network,
            suiRpcUrl=settings.public_sui_rpc_url,
            rateLimitDisabled=settings.rate_limit_disabled,
        )
        return JSONResponse(body.to_json())

    return endpoint


def openapi(operations: Callable[[], Sequence[Operation]]) -> Endpoint:
    cached: dict[str, object] = {}

    async def endpoint(request: Request) -> Response:
        if not cached:
            cached.update(openapi_document(operations(), title="memwal-enclave relayer", version=API_VERSION))
        return JSONResponse(cached)

    return endpoint


def routes(*, monitor: HealthMonitor, settings: Settings, operations: Callable[[], Sequence[Operation]]) -> list[DocumentedRoute]:
    health_operation = Operation("GET", "/health", "Dependencies, write readiness and version", HealthBody, errors=(503,))
    return [
        DocumentedRoute(health_operation, health(monitor, settings.retry_after_seconds)),
        DocumentedRoute(Operation("GET", "/version", "Compatibility contract", VersionBody), version),
        DocumentedRoute(Operation("GET", "/config", "Package, network and Sui endpoint", ConfigBody), config(settings)),
        DocumentedRoute(Operation("GET", "/openapi.json", "This document (OpenAPI 3.1)", None), openapi(operations)),
    ]
