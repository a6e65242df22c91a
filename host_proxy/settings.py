"""Proxy settings: routes and limits in frozen dataclasses, every limit a named constant with its unit.

Two kinds of route, each a fixed (listen → target) pair:

* **ingress**: a public TCP listener on the parent host → the enclave (``vsock:CID:PORT``). TLS is
  terminated inside the enclave, so the host forwards ciphertext it cannot read.
* **egress**: a listener the enclave can reach (``vsock:ANY:PORT``; ``unix:/path`` in tests, loopback
  ``tcp:`` for a QEMU test boot) → one allowlisted ``tcp:HOST:PORT``. The destination is fixed per
  listener, so the set of egress targets *is* the allowlist: the enclave cannot name any other host or port.

Besides routes, the proxy may serve the enclave document on the configuration channel
(``ConfigurationRoute``, configuration_server.py). Settings come from an appliance manifest
(manifest_settings.py), a JSON config file (``load_settings_file``) or flags merged on top of it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .addresses import Endpoint, TcpEndpoint, UnixEndpoint, VsockEndpoint, parse_endpoint
from .errors import AddressError, ConfigurationError

# Units: every limit below is written as a count of one of these.
BYTES = 1
KIB = 1024 * BYTES
MIB = 1024 * KIB
SECONDS = 1.0

MAX_READ_CHUNK_BYTES = 64 * KIB  # hard ceiling for one read from a socket
DEFAULT_READ_CHUNK_BYTES = 64 * KIB  # one read, into a fixed buffer per socket
DEFAULT_WRITE_BUFFER_BYTES = 64 * KIB  # above this many queued bytes, reading from the other side pauses
DEFAULT_MAX_CONNECTIONS = 1024  # live proxied connections, all routes together
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5 * SECONDS
DEFAULT_IDLE_TIMEOUT_SECONDS = 300 * SECONDS  # no byte in either direction for this long closes the connection
DEFAULT_GRACEFUL_TIMEOUT_SECONDS = 10 * SECONDS  # on shutdown, live connections get this long to finish
DEFAULT_LISTEN_BACKLOG = 512
MAX_CONFIG_FILE_BYTES = 1 * MIB

# "forward" is the enclave's side of egress (enclave/egress_forwarders.py): a loopback TCP listener inside
# the enclave copying into its channel to the parent. Config files and flags name ingress and egress only.
RouteKind = Literal["ingress", "egress", "forward"]
ROUTE_KINDS: tuple[RouteKind, ...] = ("ingress", "egress")
_LIMIT_KEYS = (
    "max_connections",
    "read_chunk_bytes",
    "write_buffer_bytes",
    "connect_timeout_seconds",
    "idle_timeout_seconds",
    "graceful_timeout_seconds",
    "listen_backlog",
)


@dataclass(frozen=True)
class Limits:
    max_connections: int = DEFAULT_MAX_CONNECTIONS  # excess connections are accepted and closed at once
    read_chunk_bytes: int = DEFAULT_READ_CHUNK_BYTES  # ≤ MAX_READ_CHUNK_BYTES
    write_buffer_bytes: int = DEFAULT_WRITE_BUFFER_BYTES  # high-water mark per direction (backpressure)
    connect_timeout_seconds: float = DEFAULT_CONNECT_TIMEOUT_SECONDS
    idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS  # 0 disables
    graceful_timeout_seconds: float = DEFAULT_GRACEFUL_TIMEOUT_SECONDS
    listen_backlog: int = DEFAULT_LISTEN_BACKLOG

    def validate(self) -> None:
        if self.max_connections < 1:
            raise ConfigurationError(f"max_connections must be at least 1, got {self.max_connections}")
        if not 1 <= self.read_chunk_bytes <= MAX_READ_CHUNK_BYTES:
            raise ConfigurationError(
                f"read_chunk_bytes must be between 1 and {MAX_READ_CHUNK_BYTES}, got {self.read_chunk_bytes}"
            )
        if self.write_buffer_bytes < 1:
            raise ConfigurationError(f"write_buffer_bytes must be at least 1, got {self.write_buffer_bytes}")
        if not self.connect_timeout_seconds > 0:
            raise ConfigurationError(f"connect_timeout_seconds must be > 0, got {self.connect_timeout_seconds}")
        if self.idle_timeout_seconds < 0:
            raise ConfigurationError(f"idle_timeout_seconds must be >= 0 (0 = off), got {self.idle_timeout_seconds}")
        if self.graceful_timeout_seconds < 0:
            raise ConfigurationError(f"graceful_timeout_seconds must be >= 0, got {self.graceful_timeout_seconds}")
        if self.listen_backlog < 1:
            raise ConfigurationError(f"listen_backlog must be at least 1, got {self.listen_backlog}")

    @property
    def max_buffered_bytes_per_direction(self) -> int:
        """Upper bound of payload one direction of one connection holds in user space.

        The reading side's fixed buffer, plus the writing transport's queue: up to write_buffer_bytes,
        and one chunk more before asyncio calls ``pause_writing`` and the reading side stops.
        """
        return self.read_chunk_bytes + self.write_buffer_bytes + self.read_chunk_bytes


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    listen: Endpoint
    target: Endpoint
    name: str = ""  # metric label; defaults to "<kind>:<listen endpoint>"
    idle_timeout_seconds: float | None = None  # this route's idle cut (0 = none); None = limits.idle_timeout_seconds

    def idle_timeout(self, limits: Limits) -> float:
        return limits.idle_timeout_seconds if self.idle_timeout_seconds is None else self.idle_timeout_seconds

    @property
    def label(self) -> str:
        return self.name or f"{self.kind}:{self.listen}"

    def validate(self) -> None:
        if self.idle_timeout_seconds is not None and self.idle_timeout_seconds < 0:
            raise ConfigurationError(f"{self.kind} {self.label}: idle_timeout_seconds must be >= 0 (0 = off)")
        if self.kind == "egress":
            if not isinstance(self.target, TcpEndpoint):
                raise ConfigurationError(f"egress {self.label}: the target must be an allowlisted tcp:HOST:PORT")
            if isinstance(self.listen, TcpEndpoint) and not is_loopback(self.listen.host):
                raise ConfigurationError(
                    f"egress {self.label}: listen on vsock: (or unix:, or loopback tcp: for a QEMU test boot), "
                    "never a public TCP address, so only the enclave can use it"
                )
        if self.kind == "forward" and not (isinstance(self.listen, TcpEndpoint) and is_loopback(self.listen.host)):
            raise ConfigurationError(f"forward {self.label}: listen on a loopback tcp: address inside the enclave")
        if self.kind == "ingress" and isinstance(self.target, TcpEndpoint) and not is_loopback(self.target.host):
            raise ConfigurationError(
                f"ingress {self.label}: the target is the enclave, vsock:CID:PORT (or unix:, or a loopback tcp: QEMU forward)"
            )
        if isinstance(self.target, (TcpEndpoint, VsockEndpoint)) and self.target.port == 0:
            raise ConfigurationError(f"{self.kind} {self.label}: target port 0 is not a destination")


@dataclass(frozen=True)
class ConfigurationRoute:
    """The configuration channel: ``listen`` (where the enclave dials at boot) serves ``document``."""

    listen: Endpoint
    document: bytes = field(repr=False)  # the enclave document (canonical JSON)

    def validate(self) -> None:
        if isinstance(self.listen, TcpEndpoint) and not is_loopback(self.listen.host):
            raise ConfigurationError("the configuration channel listens on vsock:, unix: or loopback tcp: only")


@dataclass(frozen=True)
class HostServices:
    """The enclave's log, time and credentials channels (host_services.py); from a manifest."""

    logs: Endpoint
    time: Endpoint
    credentials: Endpoint
    credentials_source: str = ""  # "imds" or "file:/path" ([host] aws_credentials); empty: not served


@dataclass(frozen=True)
class Settings:
    routes: tuple[Route, ...] = ()
    limits: Limits = field(default_factory=Limits)
    metrics: Endpoint | None = None  # where to serve /metrics; None = no metrics listener
    configuration: ConfigurationRoute | None = None  # serve the enclave document; None = not this proxy's job
    services: HostServices | None = None  # the enclave's logs, time and credentials; None = not served

    @property
    def egress_allowlist(self) -> tuple[Endpoint, ...]:
        return tuple(route.target for route in self.routes if route.kind == "egress")

    def validate(self) -> None:
        if not self.routes:
            raise ConfigurationError("no routes: give at least one --ingress or --egress rule (or a --manifest)")
        self.limits.validate()
        seen: dict[Endpoint, str] = {}
        labels: set[str] = set()
        for route in self.routes:
            route.validate()
            if route.listen in seen and not _is_ephemeral(route.listen):
                raise ConfigurationError(f"{route.listen} is used by two routes ({seen[route.listen]}, {route.label})")
            seen[route.listen] = route.label
            if route.label in labels:
                raise ConfigurationError(f"two routes are named {route.label!r}")
            labels.add(route.label)
        if self.configuration is not None:
            self.configuration.validate()
            if self.configuration.listen in seen:
                raise ConfigurationError(f"{self.configuration.listen} is used by the configuration channel and a route")
        if self.metrics is not None and isinstance(self.metrics, VsockEndpoint):
            raise ConfigurationError("serve metrics on tcp: or unix:, not vsock:")


def is_loopback(host: str) -> bool:
    """A loopback literal (127.0.0.0/8, ::1) or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ephemeral(endpoint: Endpoint) -> bool:
    return not isinstance(endpoint, UnixEndpoint) and endpoint.port == 0


def parse_rule(kind: RouteKind, text: str, *, name: str = "") -> Route:
    """``LISTEN=TARGET``, for example ``tcp:0.0.0.0:443=vsock:16:443``."""
    listen, separator, target = text.partition("=")
    if not separator or not listen or not target:
        raise ConfigurationError(f"{kind} rule {text!r}: expected LISTEN=TARGET, e.g. tcp:0.0.0.0:443=vsock:16:443")
    try:
        return Route(kind, parse_endpoint(listen), parse_endpoint(target), name)
    except AddressError as error:
        raise AddressError(f"{kind} rule {text!r}: {error}") from error


def settings_from_mapping(data: Mapping[str, Any]) -> Settings:
    """Build settings from the JSON shape below; unknown keys are errors, not silently ignored.

    {"ingress": [{"listen": "tcp:0.0.0.0:443", "target": "vsock:16:443", "name": "https", "idle_timeout_seconds": 120}],
     "egress":  [{"listen": "vsock:ANY:8101", "target": "tcp:api.openai.com:443"}],
     "limits":  {"max_connections": 1024, "idle_timeout_seconds": 300, ...},
     "metrics": "tcp:127.0.0.1:9100"}
    """
    if not isinstance(data, Mapping):
        raise ConfigurationError("the config must be a JSON object")
    _reject_unknown("config", data, ("ingress", "egress", "limits", "metrics"))
    routes: list[Route] = []
    for kind in ROUTE_KINDS:
        rules = data.get(kind, [])
        if not isinstance(rules, list):
            raise ConfigurationError(f"{kind!r} must be a list of {{listen, target}} objects")
        for index, rule in enumerate(rules):
            where = f"{kind}[{index}]"
            if not isinstance(rule, Mapping):
                raise ConfigurationError(f"{where} must be an object with listen and target")
            _reject_unknown(where, rule, ("listen", "target", "name", "idle_timeout_seconds"))
            listen, target, name = rule.get("listen"), rule.get("target"), rule.get("name", "")
            if not isinstance(listen, str) or not isinstance(target, str) or not isinstance(name, str):
                raise ConfigurationError(f"{where}: listen and target are required strings")
            idle = rule.get("idle_timeout_seconds")
            if idle is not None and (isinstance(idle, bool) or not isinstance(idle, (int, float))):
                raise ConfigurationError(f"{where}.idle_timeout_seconds must be a number of seconds")
            route = parse_rule(kind, f"{listen}={target}", name=name)
            routes.append(replace(route, idle_timeout_seconds=None if idle is None else float(idle)))
    limits_data = data.get("limits", {})
    if not isinstance(limits_data, Mapping):
        raise ConfigurationError("'limits' must be an object")
    limits = limits_from_mapping("limits", limits_data)
    metrics = data.get("metrics")
    if metrics is not None and not isinstance(metrics, str):
        raise ConfigurationError("'metrics' must be an endpoint string such as tcp:127.0.0.1:9100")
    return Settings(tuple(routes), limits, parse_endpoint(metrics) if metrics else None)


def limits_from_mapping(where: str, data: Mapping[str, Any], base: Limits | None = None) -> Limits:
    """``base`` (default: the defaults) with each ``key: value`` of ``data`` replaced; unknown keys are errors."""
    _reject_unknown(where, data, _LIMIT_KEYS)
    limits = base or Limits()
    for key, value in data.items():
        limits = with_limit(limits, key, value)
    return limits


def with_limit(limits: Limits, key: str, value: Any) -> Limits:
    """Replace one limit, checking its type (ints for counts and bytes, numbers for seconds)."""
    integral = not key.endswith("_seconds")
    if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
        kind = "an integer" if integral else "a number of seconds"
        raise ConfigurationError(f"limits.{key} must be {kind}, got {value!r}")
    changes: dict[str, Any] = {key: value if integral else float(value)}
    return replace(limits, **changes)


def load_settings_file(path: Path) -> Settings:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigurationError(f"cannot read config {path}: {error.strerror or error}") from error
    if len(raw) > MAX_CONFIG_FILE_BYTES:
        raise ConfigurationError(f"config {path} is larger than {MAX_CONFIG_FILE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"config {path} is not valid JSON: {error}") from error
    try:
        return settings_from_mapping(data)
    except ConfigurationError as error:
        raise type(error)(f"config {path}: {error}") from error


def _reject_unknown(where: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")
