"""Unauthenticated routes: /health, /version, /config, /metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relayer import __version__
from relayer.compatibility import version_document
from relayer.llm import PROMPT_VERSIONS


def routes(services) -> list[Route]:
    async def health(request: Request) -> Response:
        sidecar = await services.sidecar.health()
        write_ready = bool(sidecar) and services.jobs_running()
        body = {
            "status": "ok" if sidecar else "degraded",
            "version": __version__,
            "mode": "production",
            "prompt_versions": dict(PROMPT_VERSIONS),
            "write_ready": write_ready,
            **version_document(),
        }
        return JSONResponse(body, status_code=200 if sidecar else 503)

    async def version(request: Request) -> Response:
        return JSONResponse(version_document())

    async def config(request: Request) -> Response:
        settings = services.settings
        return JSONResponse(
            {
                "packageId": settings.package_id,
                "network": settings.sui_network,
                "suiRpcUrl": settings.public_sui_rpc_url,
                "rateLimitDisabled": settings.rate_limit_disabled,
            }
        )

    async def metrics(request: Request) -> Response:
        return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/config", config, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
