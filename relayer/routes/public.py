"""Unauthenticated routes: /health, /version, /config and /openapi.json.

/metrics is not here: it is served on the operator-only listener (METRICS_BIND, relayer/metrics_listener.py),
never on the client port.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from relayer import __version__
from relayer.api_models import ConfigBody, DependencyStatus, EmbeddingModelBody, HealthBody, VersionBody
from relayer.compatibility import API_VERSION, version_document
from relayer.embedding_models import ModelDescription
from relayer.health import HealthMonitor
from relayer.llm import PROMPT_VERSIONS, LanguageModel
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


def config(settings: Settings, embedding: ModelDescription, llm: LanguageModel) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        body = ConfigBody(
            packageId=settings.package_id,
            network=settings.sui_network,
            suiRpcUrl=settings.public_sui_rpc_url,
            rateLimitDisabled=settings.rate_limit_disabled,
            # Beyond upstream's four keys: what a client computing vectors must match, and where text goes.
            embedding=EmbeddingModelBody.model_validate(embedding.as_json()),
            egressPolicy=settings.egress_policy,
            llm=llm.status,
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


def routes(
    *, monitor: HealthMonitor, settings: Settings, embedding: ModelDescription, llm: LanguageModel,
    operations: Callable[[], Sequence[Operation]],
) -> list[DocumentedRoute]:
    health_operation = Operation("GET", "/health", "Dependencies, write readiness and version", HealthBody, errors=(503,))
    config_operation = Operation("GET", "/config", "Package, network, Sui endpoint, embedding model, egress policy", ConfigBody)
    return [
        DocumentedRoute(health_operation, health(monitor, settings.retry_after_seconds)),
        DocumentedRoute(Operation("GET", "/version", "Compatibility contract", VersionBody), version),
        DocumentedRoute(config_operation, config(settings, embedding, llm)),
        DocumentedRoute(Operation("GET", "/openapi.json", "This document (OpenAPI 3.1)", None), openapi(operations)),
    ]
