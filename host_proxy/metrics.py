"""Prometheus metrics of the proxy, on a registry of its own.

Labels are configuration and fixed vocabularies only: the route label (``Route.label``), a direction
(``to_target`` / ``to_client``), a connect-failure reason (``ConnectError.reason``), a rejection reason
and a close outcome. Byte counters of a live connection advance in steps of ``pump.METRIC_FLUSH_BYTES``
and are exact once it ends. No payload byte, client address or hostname from traffic ever becomes a label.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
CONNECTION_DURATION_BUCKETS_SECONDS = (0.01, 0.1, 1, 10, 60, 300, 1800, 3600, 6 * 3600, float("inf"))
CONNECT_DURATION_BUCKETS_SECONDS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, float("inf"))


@dataclass(frozen=True)
class RouteMetrics:
    """The children of one route, resolved once so the copy loop does no label lookups."""

    accepted: Counter
    active: Gauge
    bytes_to_target: Counter
    bytes_to_client: Counter
    duration: Histogram
    connect_duration: Histogram


class ProxyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Counter(
            "host_proxy_connections_total", "Client connections accepted and proxied", ["route"], registry=r
        )
        self.active = Gauge("host_proxy_connections_active", "Client connections being proxied", ["route"], registry=r)
        self.rejected = Counter(
            "host_proxy_connections_rejected_total",
            "Client connections closed at once without proxying",
            ["route", "reason"],
            registry=r,
        )
        self.closed = Counter(
            "host_proxy_connections_closed_total",
            "Proxied connections by how they ended (closed, idle, reset, shutdown, connect_failed)",
            ["route", "outcome"],
            registry=r,
        )
        self.bytes = Counter(
            "host_proxy_bytes_total", "Payload bytes forwarded", ["route", "direction"], registry=r
        )
        self.connect_failures = Counter(
            "host_proxy_connect_failures_total", "Failed connects to a route's target", ["route", "reason"], registry=r
        )
        self.duration = Histogram(
            "host_proxy_connection_duration_seconds",
            "Lifetime of proxied connections",
            ["route"],
            buckets=CONNECTION_DURATION_BUCKETS_SECONDS,
            registry=r,
        )
        self.connect_duration = Histogram(
            "host_proxy_connect_duration_seconds",
            "Time to connect to the target",
            ["route"],
            buckets=CONNECT_DURATION_BUCKETS_SECONDS,
            registry=r,
        )
        self.configuration_served = Counter(
            "host_proxy_configuration_served_total", "Enclave documents served on the configuration channel", registry=r
        )
        self.accept_errors = Counter(
            "host_proxy_accept_errors_total", "accept() failures (e.g. out of file descriptors)", ["route"], registry=r
        )

    def for_route(self, route: str) -> RouteMetrics:
        """Create the route's series at zero, so dashboards see them before the first connection."""
        for reason in ("timeout", "refused", "unreachable", "error"):
            self.connect_failures.labels(route, reason)
        self.rejected.labels(route, "limit")
        self.accept_errors.labels(route)
        return RouteMetrics(
            accepted=self.connections.labels(route),
            active=self.active.labels(route),
            bytes_to_target=self.bytes.labels(route, "to_target"),
            bytes_to_client=self.bytes.labels(route, "to_client"),
            duration=self.duration.labels(route),
            connect_duration=self.connect_duration.labels(route),
        )

    def render(self) -> bytes:
        """Prometheus text exposition format."""
        return generate_latest(self.registry)
