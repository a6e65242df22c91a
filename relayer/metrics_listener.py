"""The operator-only metrics app: ``GET /metrics`` (Prometheus text) and nothing else.

Per-route counts and rate-limit denials tell an observer who uses the relayer how, so they are not served on
the client port. ``python -m relayer`` serves this app on METRICS_BIND (loopback or a Unix socket on a plain
host); inside an enclave the runtime serves it on a vsock port that only the host proxy's operator listener
reaches (docs/nitro.md).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from relayer.observability import Metrics


def metrics_app(metrics: Metrics) -> Starlette:
    async def endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", endpoint, methods=["GET"])])
