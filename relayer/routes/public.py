"""Unauthenticated routes: /health, /version, /config, /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relayer import __version__
from relayer.compatibility import version_document
from relayer.embedding_models import ModelDescription
from relayer.job_runner import JobRunner
from relayer.llm import PROMPT_VERSIONS, LanguageModel
from relayer.observability import Metrics
from relayer.settings import Settings
from relayer.sidecar_client import SidecarApi

Endpoint = Callable[[Request], Awaitable[Response]]


def health(sidecar: SidecarApi, job_runner: JobRunner) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        healthy = await sidecar.health() is not None
        body = {
            "status": "ok" if healthy else "degraded",
            "version": __version__,
            "mode": "production",
            "prompt_versions": dict(PROMPT_VERSIONS),
            "write_ready": healthy and job_runner.running,
            **version_document(),
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    return endpoint


async def version(request: Request) -> Response:
    return JSONResponse(version_document())


def config(settings: Settings, embedding: ModelDescription, llm: LanguageModel) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return JSONResponse(
            {
                "packageId": settings.package_id,
                "network": settings.sui_network,
                "suiRpcUrl": settings.public_sui_rpc_url,
                "rateLimitDisabled": settings.rate_limit_disabled,
                # Beyond upstream's four keys: what a client computing vectors must match, and where text goes.
                "embedding": embedding.as_json(),
                "egressPolicy": settings.egress_policy,
                "llm": llm.status,
            }
        )

    return endpoint


def metrics(registry: Metrics) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)

    return endpoint


def routes(
    *, sidecar: SidecarApi, job_runner: JobRunner, settings: Settings, registry: Metrics, embedding: ModelDescription,
    llm: LanguageModel,
) -> list[Route]:
    return [
        Route("/health", health(sidecar, job_runner), methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/config", config(settings, embedding, llm), methods=["GET"]),
        Route("/metrics", metrics(registry), methods=["GET"]),
    ]
