"""Proxy settings from an appliance manifest: the one document that also configures the enclave.

    ingress        [host].public_ingress → the enclave's [enclave].ingress_port
    egress <name>  the parent's [[egress]].vsock_port → tcp:destination (one per route: the allowlist)
    configuration  the parent's manifest.CONFIGURATION_PORT serves the enclave document (canonical JSON)
    metrics        [host].metrics, when set (the proxy's own metrics)
    relayer metrics  [host].relayer_metrics (loopback or unix:) → the enclave's manifest.METRICS_PORT: the
                   relayer's operator metrics, which the public ingress does not serve
    services       the enclave's logs (→ stdout/journald) and time channels; its AWS credentials ([host].aws_credentials)
    limits         [host.limits] over the defaults below
    idle cuts      per route: short on the public ingress (a silent client is gone; the relayer closes idle
                   keep-alives itself), long on egress (the enclave's database and Redis pools keep tunnels
                   open between bursts); [host.limits] ingress_idle_timeout_seconds / egress_idle_timeout_seconds

The channels (``ParentChannels``) say what a port number means: vsock on Nitro, Unix sockets for the
local appliance, TCP for a QEMU test boot.
"""

from __future__ import annotations

from typing import Any

from manifest import CONFIGURATION_PORT, CREDENTIALS_PORT, LOGS_PORT, METRICS_PORT, TIME_PORT, Manifest

from .addresses import TcpEndpoint, UnixEndpoint, parse_endpoint
from .channels import ParentChannels
from .errors import ConfigurationError
from .settings import SECONDS, ConfigurationRoute, HostServices, Limits, Route, Settings, is_loopback, limits_from_mapping

# The enclave's clients pool their upstream connections (asyncpg, redis, httpx) and its server closes idle
# client connections itself (hypercorn keep-alive), so the host cuts nothing for idleness unless told to.
MANIFEST_DEFAULT_LIMITS = Limits(idle_timeout_seconds=0.0)
INGRESS_ROUTE = "ingress"
RELAYER_METRICS_ROUTE = "relayer-metrics"
RELAYER_METRICS_IDLE_TIMEOUT_SECONDS = 30 * SECONDS
INGRESS_IDLE_TIMEOUT_SECONDS = 120 * SECONDS
EGRESS_IDLE_TIMEOUT_SECONDS = 3600 * SECONDS


def settings_from_manifest(deployment: Manifest, channels: ParentChannels) -> Settings:
    """Every route, the configuration channel, metrics and limits of ``deployment``; validated."""
    enclave, host = deployment.enclave, deployment.host
    try:
        limits_data: dict[str, Any] = dict(host.limits)
        ingress_idle = _seconds(limits_data.pop("ingress_idle_timeout_seconds", INGRESS_IDLE_TIMEOUT_SECONDS), "ingress")
        egress_idle = _seconds(limits_data.pop("egress_idle_timeout_seconds", EGRESS_IDLE_TIMEOUT_SECONDS), "egress")
        routes = [
            Route("ingress", parse_endpoint(host.public_ingress), channels.to_enclave(enclave.ingress_port), INGRESS_ROUTE,
                  idle_timeout_seconds=ingress_idle)
        ]
        routes += [
            Route("egress", channels.listen(route.vsock_port), TcpEndpoint(route.host, route.port), route.name,
                  idle_timeout_seconds=egress_idle)
            for route in enclave.egress
        ]
        limits = limits_from_mapping("host.limits", limits_data, MANIFEST_DEFAULT_LIMITS)
        metrics = parse_endpoint(host.metrics) if host.metrics else None
        if host.relayer_metrics:
            listen = parse_endpoint(host.relayer_metrics)
            if not (isinstance(listen, UnixEndpoint) or (isinstance(listen, TcpEndpoint) and is_loopback(listen.host))):
                raise ConfigurationError("host.relayer_metrics is operator-only: listen on loopback tcp: or unix:")
            routes.append(Route("ingress", listen, channels.to_enclave(METRICS_PORT), RELAYER_METRICS_ROUTE,
                                idle_timeout_seconds=RELAYER_METRICS_IDLE_TIMEOUT_SECONDS))
    except ConfigurationError as error:
        raise ConfigurationError(f"manifest: {error}") from None
    configuration = ConfigurationRoute(channels.listen(CONFIGURATION_PORT), enclave.canonical_json())
    services = HostServices(
        logs=channels.listen(LOGS_PORT), time=channels.listen(TIME_PORT), credentials=channels.listen(CREDENTIALS_PORT),
        credentials_source=host.aws_credentials,
    )  # fmt: skip
    settings = Settings(tuple(routes), limits, metrics, configuration, services)
    settings.validate()
    return settings



def _seconds(value: Any, kind: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"host.limits.{kind}_idle_timeout_seconds must be a number of seconds >= 0 (0 = off)")
    return float(value)
