"""The appliance's wiring as data: sockets, egress routes, host-proxy rules, the enclave's environment.

Nothing here starts a process; ``devtools/appliance.py`` does. Keeping the layout pure makes it the one
place that says which socket leads where (docs/appliance.md draws the same picture).

Sockets (all under ``<data-dir>/sockets``)::

    enclave-ingress.sock     the enclave runtime listens (TLS inside); the host proxy's ingress target
    egress-<name>.sock       the enclave dials these (its ENCLAVE_EGRESS tunnels)
    proxy-ingress.sock       with a recording tap only: the host proxy's ingress target, tap → enclave-ingress
    proxy-egress-<name>.sock with a recording tap only: where the host proxy listens, tap in front
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from attestation.provisioning import PROVISIONABLE_SECRETS
from enclave.config_commitment import RuntimeConfiguration
from enclave.egress import EgressAllowlist
from localnet.environment import relayer_configuration
from relayer.settings import Settings

from .processes import HOST_ONLY_PREFIXES

MAX_UNIX_PATH_BYTES = 107
IMAGE_PCRS_PATH = Path("build") / "image" / "pcrs.json"
# Used when no image was built: fixed, non-zero (all-zero PCR0–2 is debug mode, which verifiers refuse).
DEV_PCRS = {index: hashlib.sha384(f"memwal-enclave appliance dev PCR{index}".encode()).digest() for index in (0, 1, 2)}
_PCR_KEY = re.compile(r"PCR(0|[1-9][0-9]?)")
# Variables the host must not pass into the enclave: its own configuration is set explicitly below.
_HOST_ONLY_PREFIXES = (*HOST_ONLY_PREFIXES, "ENCLAVE_", "EMBEDDING_", "LLM_")


class LayoutError(ValueError):
    """The data directory or an upstream URL cannot be laid out (path too long, URL without a port)."""


@dataclass(frozen=True)
class EgressRoute:
    """One allowlisted upstream: the enclave dials ``socket``; the host proxy listens on ``proxy_socket``."""

    name: str
    host: str
    port: int
    socket: Path
    proxy_socket: Path

    @property
    def allowlist_entry(self) -> str:
        return f"{self.host}:{self.port}=unix:{self.socket}"

    @property
    def proxy_rule(self) -> str:
        return f"unix:{self.proxy_socket}=tcp:{self.host}:{self.port}"

    @property
    def tapped(self) -> bool:
        return self.socket != self.proxy_socket


@dataclass(frozen=True)
class ApplianceLayout:
    data_dir: Path
    port: int  # host-side ingress, tcp:127.0.0.1:PORT
    tapped: bool  # a recording tap sits between the host proxy and the enclave

    @property
    def sockets(self) -> Path:
        return self.data_dir / "sockets"

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def enclave_ingress(self) -> Path:
        return self.sockets / "enclave-ingress.sock"

    @property
    def proxy_ingress_target(self) -> Path:
        return self.sockets / "proxy-ingress.sock" if self.tapped else self.enclave_ingress

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pcrs_path(self) -> Path:
        return self.data_dir / "pcrs.json"

    @property
    def test_root_path(self) -> Path:
        return self.data_dir / "simulator-test-root.pem"

    def socket_path(self, filename: str) -> Path:
        path = self.sockets / filename
        if len(os.fsencode(str(path))) > MAX_UNIX_PATH_BYTES:
            raise LayoutError(f"socket path {path} is longer than {MAX_UNIX_PATH_BYTES} bytes; use a shorter --data-dir")
        return path

    def egress_routes(self, info: Mapping[str, Any], *, database_url: str, redis_url: str) -> tuple[EgressRoute, ...]:
        """Every upstream the relayer and sidecar dial, named, deduplicated by host:port."""
        upstreams = [
            ("sui-rpc", info["sui_rpc_url"]),
            ("sui-graphql", info["sui_graphql_url"]),
            ("walrus-publisher", info["walrus_publisher_url"]),
            *((f"walrus-aggregator-{n}", url) for n, url in enumerate(info["walrus_aggregator_urls"], 1)),
            *((f"seal-{n}", server["url"]) for n, server in enumerate(info["seal_key_servers"], 1)),
            ("openai", info["openai_api_base"]),
            ("postgres", database_url),
            ("redis", redis_url),
        ]
        routes: list[EgressRoute] = []
        seen: set[tuple[str, int]] = set()
        for name, url in upstreams:
            host, port = _host_port(name, url)
            if (host, port) in seen:
                continue
            seen.add((host, port))
            enclave_side = self.socket_path(f"egress-{name}.sock")
            proxy_side = self.socket_path(f"proxy-egress-{name}.sock") if self.tapped else enclave_side
            routes.append(EgressRoute(name, host, port, enclave_side, proxy_side))
        return tuple(routes)

    def proxy_arguments(self, routes: tuple[EgressRoute, ...]) -> list[str]:
        """``python -m host_proxy`` arguments: one ingress, one egress per route, no idle cut (pools)."""
        arguments = ["--ingress", f"tcp:127.0.0.1:{self.port}=unix:{self.proxy_ingress_target}"]
        for route in routes:
            arguments += ["--egress", route.proxy_rule]
        return arguments + ["--idle-timeout", "0", "--graceful-timeout", "2"]


def _host_port(name: str, url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = parts.port or default
    if not parts.hostname or port is None:
        raise LayoutError(f"{name} URL {url!r} names no host:port")
    return parts.hostname, port


def enclave_environment(
    layout: ApplianceLayout,
    info: Mapping[str, Any],
    routes: tuple[EgressRoute, ...],
    *,
    isolated: bool,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The enclave runtime's environment: non-secret configuration only (secrets arrive via /provision)."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_HOST_ONLY_PREFIXES) and name not in PROVISIONABLE_SECRETS and name not in ("BIND", "PORT")
    }
    environment.update(
        {
            "BIND": f"unix:{layout.enclave_ingress}",
            "MEMWAL_DATA_DIR": str(layout.data_dir / "enclave"),
            **relayer_configuration(info, sui_protocol="jsonrpc"),
            "ENCLAVE_ATTESTER": "simulator",
            "ENCLAVE_SIMULATOR_PCRS": str(layout.pcrs_path),
            "ENCLAVE_SIMULATOR_ROOT_OUT": str(layout.test_root_path),
            "ENCLAVE_EGRESS": ",".join(route.allowlist_entry for route in routes),
            # Without a namespace the runtime shares the host's loopback, where the upstreams already
            # listen on the forwarders' addresses: no forwarders, and no isolation either.
            "ENCLAVE_FORWARDERS": "on" if isolated else "off",
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.update(extra or {})
    return environment


def expected_configuration_digest(environment: Mapping[str, str]) -> bytes:
    """What the operator expects the enclave to commit to PCR16 (docs/tee.md), from the same environment."""
    settings = Settings.from_environ(environment)
    settings.validate()
    destinations = EgressAllowlist.parse(environment.get("ENCLAVE_EGRESS", "")).destinations()
    hostname = environment.get("ENCLAVE_TLS_HOSTNAME", "localhost").strip() or "localhost"
    return RuntimeConfiguration.from_settings(settings, egress_allowlist=destinations, tls_hostname=hostname).digest()


def write_simulator_pcrs(layout: ApplianceLayout, repository: Path) -> tuple[dict[int, bytes], str]:
    """PCR0/1/2 of the built image (``build/image/pcrs.json``) if there is one, else DEV_PCRS.

    Written to ``<data-dir>/pcrs.json`` in the plain ``{"PCR0": hex, …}`` shape that both the simulator
    and ``attestation.measurements.load_expected_pcrs`` read. Returns the values and where they came from.
    """
    image = repository / IMAGE_PCRS_PATH
    pcrs, source = dict(DEV_PCRS), "fixed development values (no build/image/pcrs.json)"
    if image.exists():
        data = json.loads(image.read_text())
        data = data.get("Measurements", data)
        pcrs = {int(match.group(1)): bytes.fromhex(value) for key, value in data.items() if (match := _PCR_KEY.fullmatch(key))}
        source = str(IMAGE_PCRS_PATH)
    layout.pcrs_path.write_text(json.dumps({f"PCR{index}": value.hex() for index, value in sorted(pcrs.items())}, indent=2))
    return pcrs, source
