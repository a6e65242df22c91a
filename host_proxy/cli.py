"""Command line of ``python -m host_proxy``: flags and an optional JSON config → ``Settings`` → ``serve``."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from manifest import ManifestError, load_manifest
from memwal_common.logs import configure_logging

from .addresses import parse_endpoint
from .channels import ParentChannels
from .errors import ConfigurationError, HostProxyError
from .manifest_settings import settings_from_manifest
from .proxy import serve
from .settings import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_GRACEFUL_TIMEOUT_SECONDS,
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    Settings,
    load_settings_file,
    parse_rule,
    with_limit,
)

DESCRIPTION = """\
Parent-host proxy for a MemWal relayer running in an AWS Nitro enclave. An enclave has no network
device; its only channel is vsock, and this proxy is the bridge.

INGRESS  --ingress LISTEN=TARGET, e.g. tcp:0.0.0.0:443=vsock:16:443
  Clients connect to the host; each connection is copied byte for byte to the enclave (CID 16 here).
  TLS terminates INSIDE the enclave, so this proxy only ever sees ciphertext: it holds no certificate,
  no key and cannot read or alter what clients send without breaking TLS.

EGRESS   --egress LISTEN=TARGET, e.g. vsock:ANY:8101=tcp:api.openai.com:443
  The enclave connects to a vsock port on the host; the proxy connects to the ONE host:port fixed for
  that port. The egress rules are the allowlist: the enclave cannot ask for any other destination
  (there is no CONNECT or SOCKS). The target name is resolved by the host at connect time; TLS to the
  destination is again end to end, from inside the enclave.

MANIFEST --manifest FILE [--transport vsock|unix:/DIR|tcp:ADDRESS]
  One appliance manifest (TOML; docs/nitro.md) gives every route: the public ingress, one egress
  listener per [[egress]] route, and the configuration channel on port 7000 that hands the enclave
  its part of the manifest at boot (the enclave commits its SHA-384 to PCR16). --transport says what
  a port number means: vsock (Nitro, the default), Unix sockets in a directory, or TCP for a QEMU test boot.

Endpoints are vsock:CID:PORT (CID may be ANY or HOST), unix:/abs/path (for tests; the same code runs
over AF_UNIX) and tcp:HOST:PORT (IPv6 as tcp:[::1]:443). A failed connect to a target closes only that
client connection. SIGINT/SIGTERM stop accepting, let live connections finish for --graceful-timeout
seconds, then close the rest.
"""

EPILOG = """\
config file (JSON; flags are added on top, limits given as flags win):
  {"ingress": [{"listen": "tcp:0.0.0.0:443", "target": "vsock:16:443", "name": "https"}],
   "egress":  [{"listen": "vsock:ANY:8101", "target": "tcp:api.openai.com:443"}],
   "limits":  {"max_connections": 1024, "connect_timeout_seconds": 5, "idle_timeout_seconds": 300,
               "graceful_timeout_seconds": 10, "read_chunk_bytes": 65536, "write_buffer_bytes": 65536,
               "listen_backlog": 512},
   "metrics": "tcp:127.0.0.1:9100"}

examples:
  python -m host_proxy --manifest /etc/memwal/manifest.toml            # a Nitro parent
  python -m host_proxy --manifest manifest.toml --check                # print routes and the config hash
  python -m host_proxy --ingress tcp:0.0.0.0:443=vsock:16:443 \\
      --egress vsock:ANY:8101=tcp:api.openai.com:443 --metrics tcp:127.0.0.1:9100
  python -m host_proxy --config /etc/host-proxy.json --check     # validate and print the routes
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m host_proxy",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--manifest", type=Path, metavar="FILE", help="appliance manifest (TOML): every route and the enclave's configuration")
    parser.add_argument(
        "--transport",
        default="vsock",
        metavar="KIND",
        help="with --manifest: vsock (default), unix:/DIR or tcp:ADDRESS (what a channel port number means)",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="JSON config file (format below)")
    parser.add_argument(
        "--ingress", action="append", default=[], metavar="LISTEN=TARGET", help="public listener → enclave; repeatable"
    )
    parser.add_argument(
        "--egress",
        action="append",
        default=[],
        metavar="LISTEN=TARGET",
        help="enclave-facing listener → one allowlisted tcp:HOST:PORT; repeatable",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help=f"live connections over all routes; more are closed at once (default {DEFAULT_MAX_CONNECTIONS})",
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        metavar="S",
        help=f"seconds to connect to a target (default {DEFAULT_CONNECT_TIMEOUT_SECONDS:g})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        metavar="S",
        help=f"close a connection with no byte either way for S seconds; 0 = never (default {DEFAULT_IDLE_TIMEOUT_SECONDS:g})",
    )
    parser.add_argument(
        "--graceful-timeout",
        type=float,
        metavar="S",
        help=f"on shutdown, seconds live connections may finish (default {DEFAULT_GRACEFUL_TIMEOUT_SECONDS:g})",
    )
    parser.add_argument("--metrics", metavar="ADDR", help="serve Prometheus /metrics here, e.g. tcp:127.0.0.1:9100")
    parser.add_argument("--log-format", choices=("pretty", "json"), default="pretty", help="stderr log format")
    parser.add_argument("--check", action="store_true", help="validate the settings, print the routes, exit")
    return parser


_LIMIT_FLAGS = {
    "max_connections": "max_connections",
    "connect_timeout": "connect_timeout_seconds",
    "idle_timeout": "idle_timeout_seconds",
    "graceful_timeout": "graceful_timeout_seconds",
}


def settings_from_arguments(arguments: argparse.Namespace) -> Settings:
    """Merge the manifest or config file (if any) and the flags, then validate. Raises ``ConfigurationError``."""
    if arguments.manifest is not None:
        if arguments.config or arguments.ingress or arguments.egress:
            raise ConfigurationError("--manifest gives every route; do not combine it with --config, --ingress or --egress")
        try:
            deployment = load_manifest(arguments.manifest)
        except ManifestError as error:
            raise ConfigurationError(str(error)) from None
        channels = ParentChannels.parse(arguments.transport, enclave_cid=deployment.host.enclave_cid)
        settings = settings_from_manifest(deployment, channels)
    elif arguments.transport != "vsock":
        raise ConfigurationError("--transport only applies to --manifest")
    else:
        settings = load_settings_file(arguments.config) if arguments.config else Settings()
    routes = list(settings.routes)
    routes += [parse_rule("ingress", text) for text in arguments.ingress]
    routes += [parse_rule("egress", text) for text in arguments.egress]
    limits = settings.limits
    for flag, key in _LIMIT_FLAGS.items():
        value = getattr(arguments, flag)
        if value is not None:
            limits = with_limit(limits, key, value)
    metrics = parse_endpoint(arguments.metrics) if arguments.metrics else settings.metrics
    settings = Settings(tuple(routes), limits, metrics, settings.configuration, settings.services)
    settings.validate()
    return settings


def describe(settings: Settings) -> str:
    lines = [f"{route.kind:7} {route.listen} → {route.target}   ({route.label})" for route in settings.routes]
    limits = settings.limits
    lines.append(
        f"limits: max_connections={limits.max_connections} connect_timeout={limits.connect_timeout_seconds:g}s "
        f"idle_timeout={limits.idle_timeout_seconds:g}s graceful_timeout={limits.graceful_timeout_seconds:g}s "
        f"read_chunk={limits.read_chunk_bytes}B write_buffer={limits.write_buffer_bytes}B"
    )
    allowlist = ", ".join(str(target) for target in settings.egress_allowlist) or "(none: no egress)"
    lines.append(f"egress allowlist: {allowlist}")
    lines.append(f"metrics: {settings.metrics or 'off'}")
    if settings.services is not None:
        services = settings.services
        credentials = services.credentials_source or "not served"
        lines.append(f"enclave channels: logs {services.logs} (→ stdout), time {services.time}, credentials {services.credentials} ({credentials})")
    if settings.configuration is not None:
        digest = hashlib.sha384(settings.configuration.document).hexdigest()
        lines.append(f"configuration channel: {settings.configuration.listen} (enclave document sha384 {digest})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        settings = settings_from_arguments(arguments)
    except HostProxyError as error:
        parser.error(str(error))  # exits with status 2 and the usage line
    if arguments.check:
        print(describe(settings))
        return 0
    configure_logging(arguments.log_format)
    try:
        asyncio.run(serve(settings))
    except HostProxyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    logging.getLogger(__name__).info("stopped")
    return 0
