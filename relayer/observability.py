"""Metrics (memwal.md §10 names), request ids and logging.

Metrics carry no payload data: labels are fixed route templates, methods, statuses and error kinds.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("memwal_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r)
        self.duration = Histogram(
            "memwal_http_request_duration_seconds", "HTTP request duration", ["method", "route", "status"], registry=r
        )
        self.in_flight = Gauge("memwal_http_requests_in_flight", "HTTP requests in flight", registry=r)
        self.errors = Counter("memwal_errors_total", "Errors by kind", ["kind", "route"], registry=r)
        self.rate_limit_denials = Counter(
            "memwal_rate_limit_denials_total", "Rate-limit denials", ["bucket", "route"], registry=r
        )
        self.rate_limit_fallbacks = Counter(
            "memwal_rate_limit_fallbacks_total", "Rate limiter fell back to memory", ["scope"], registry=r
        )
        self.revocation_poll_failures = Counter(
            "memwal_revocation_poll_failures_total", "Reads of revocation events that failed (the cache TTL still bounds)",
            registry=r,
        )
        self.external = Histogram(
            "memwal_external_request_duration_seconds", "Calls to upstreams", ["service", "operation", "status"], registry=r
        )
        self.sidecar_failures = Counter(
            "memwal_sidecar_failures_total", "Failed sidecar calls", ["operation", "reason"], registry=r
        )
        self.db_duration = Histogram(
            "memwal_db_query_duration_seconds", "Database query duration", ["operation", "status"], registry=r
        )
        self.db_pool = Gauge("memwal_db_pool_connections", "Database pool connections", ["state"], registry=r)
        self.blob_misses = Counter(
            "memwal_blob_not_found_total", "Recalled blobs every aggregator called missing, by what was done",
            ["action"], registry=r,
        )
        self.jobs = Counter("memwal_remember_jobs_total", "Remember jobs by outcome", ["outcome"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def request_id_from(headers: dict[str, str]) -> str:
    for name in ("x-request-id", "x-correlation-id"):
        value = headers.get(name)
        if value and REQUEST_ID_PATTERN.match(value):
            return value
    return str(uuid.uuid4())


class ObservabilityMiddleware:
    """Assigns the request id, echoes it, and records the HTTP metrics under the route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics, route_of: Callable[[Scope], str]) -> None:
        self.app = app
        self.metrics = metrics
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = request_id_from(headers)
        scope.setdefault("state", {})["request_id"] = request_id
        status_holder = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode("ascii"))]
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            route = self.route_of(scope)
            labels = (scope["method"], route, str(status_holder["status"]))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.duration.labels(*labels).observe(time.perf_counter() - started)
