"""The appliance's wiring as data: the manifest it writes, the channels' sockets, the processes' arguments.

Nothing here starts a process; ``devtools/appliance.py`` does. One manifest (``<data-dir>/manifest.toml``)
describes the deployment, as on a Nitro parent: the host proxy derives every route from it and serves its
enclave part on the configuration channel, and the enclave commits that part to PCR16. Channels are Unix
sockets named by their port (host_proxy/channels.py), under ``<data-dir>/sockets``::

    port-7000.sock   configuration channel: the host proxy serves, the enclave dials at boot
    port-8443.sock   ingress: the enclave listens (TLS inside), the host proxy dials
    port-81NN.sock   egress, one per upstream: the host proxy listens, the enclave's forwarders dial

With a recording tap the enclave's sockets are in ``sockets/enclave`` and the host proxy's in
``sockets/host``, and a tap per port copies between the two.
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

from localnet.environment import relayer_configuration
from manifest import CONFIGURATION_PORT, EgressRoute, EnclaveDocument, HostSection, Manifest, load_manifest
from manifest.writing import manifest_toml

MAX_UNIX_PATH_BYTES = 107
IMAGE_PCRS_PATH = Path("build") / "image" / "pcrs.json"
# Used when no image was built: fixed, non-zero (all-zero PCR0–2 is debug mode, which verifiers refuse).
DEV_PCRS = {index: hashlib.sha384(f"memwal-enclave appliance dev PCR{index}".encode()).digest() for index in (0, 1, 2)}
FIRST_EGRESS_PORT = 8101
INGRESS_PORT = 8443
_PCR_KEY = re.compile(r"PCR(0|[1-9][0-9]?)")
# The only host variables the enclave process inherits (the runtime refuses configuration in its environment).
_ENCLAVE_PROCESS_VARIABLES = ("PATH", "HOME", "LANG", "TZ", "PYTHONPATH", "PYTHONHASHSEED")


class LayoutError(ValueError):
    """The data directory or an upstream URL cannot be laid out (path too long, URL without a port)."""


@dataclass(frozen=True)
class ApplianceLayout:
    data_dir: Path
    port: int  # host-side ingress, tcp:127.0.0.1:PORT
    tapped: bool  # a recording tap sits between the host proxy and the enclave

    @property
    def sockets(self) -> Path:
        return self.data_dir / "sockets"

    @property
    def enclave_sockets(self) -> Path:
        return self.sockets / "enclave" if self.tapped else self.sockets

    @property
    def host_sockets(self) -> Path:
        return self.sockets / "host" if self.tapped else self.sockets

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "manifest.toml"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pcrs_path(self) -> Path:
        return self.data_dir / "pcrs.json"

    @property
    def test_root_path(self) -> Path:
        return self.data_dir / "simulator-test-root.pem"

    @property
    def test_pki_path(self) -> Path:
        """The simulator's test root with its key, kept across runs so the published root stays valid."""
        return self.data_dir / "simulator-test-pki.pem"

    @property
    def demo_account_path(self) -> Path:
        return self.data_dir / "demo-account.json"

    @property
    def quickstart_path(self) -> Path:
        return self.data_dir / "quickstart.py"

    @property
    def enclave_transport(self) -> str:
        return f"unix:{self.enclave_sockets}"

    @property
    def host_transport(self) -> str:
        return f"unix:{self.host_sockets}"

    def enclave_socket(self, port: int) -> Path:
        return self._socket(self.enclave_sockets, port)

    def host_socket(self, port: int) -> Path:
        return self._socket(self.host_sockets, port)

    @property
    def enclave_ingress(self) -> Path:
        return self.enclave_socket(INGRESS_PORT)

    def _socket(self, directory: Path, port: int) -> Path:
        path = directory / f"port-{port}.sock"
        if len(os.fsencode(str(path))) > MAX_UNIX_PATH_BYTES:
            raise LayoutError(f"socket path {path} is longer than {MAX_UNIX_PATH_BYTES} bytes; use a shorter --data-dir")
        return path

    def egress_routes(
        self, info: Mapping[str, Any], *, database_url: str, redis_url: str, plaintext_llm: bool = False
    ) -> tuple[EgressRoute, ...]:
        """Every upstream the relayer and sidecar dial, named, deduplicated by host:port, one channel port each;
        ``plaintext_llm`` marks the OpenAI-compatible stand-in's route ``allow_plaintext``."""
        upstreams = [
            ("sui-rpc", info["sui_rpc_url"]),
            ("sui-graphql", info["sui_graphql_url"]),
            *((("sui-grpc", info["sui_grpc_url"]),) if info.get("sui_grpc_url") else ()),
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
            routes.append(EgressRoute(name, host, port, FIRST_EGRESS_PORT + len(routes), plaintext_llm and name == "openai"))
        return tuple(routes)

    def tapped_ports(self, routes: tuple[EgressRoute, ...]) -> list[tuple[str, Path, Path]]:
        """(route name, where the tap listens, where it connects) for every channel that crosses the boundary."""
        taps = [("ingress", self.host_socket(INGRESS_PORT), self.enclave_socket(INGRESS_PORT))]
        taps.append(("configuration", self.enclave_socket(CONFIGURATION_PORT), self.host_socket(CONFIGURATION_PORT)))
        taps += [(route.name, self.enclave_socket(route.vsock_port), self.host_socket(route.vsock_port)) for route in routes]
        return taps


def build_manifest(
    layout: ApplianceLayout, info: Mapping[str, Any], routes: tuple[EgressRoute, ...], *, extra: Mapping[str, str] | None = None
) -> Manifest:
    """The appliance's deployment: localnet's configuration, its upstreams as egress routes, the host port."""
    relayer = {**relayer_configuration(info, sui_protocol="jsonrpc"), **(extra or {})}
    document = EnclaveDocument.from_mapping(
        {
            "format": 1,
            "enclave": {"tls_hostname": "localhost", "ingress_port": INGRESS_PORT},
            "relayer": relayer,
            "egress": [route.as_json() for route in routes],
        }
    )
    return Manifest(document, HostSection(public_ingress=f"tcp:127.0.0.1:{layout.port}"))


# What a data directory's vectors were embedded with before this was recorded: the localnet's stand-in.
LEGACY_EMBEDDING_SPACE = "openai text-embedding-3-small"


def claim_embedding_space(layout: ApplianceLayout, space: str, *, has_data: bool) -> None:
    """Record which embeddings this data directory's vectors come from; refuse a run that would mix two.

    Vectors of different models are not comparable: recall over a mix returns noise. ``space`` is
    "<EMBEDDING_PROVIDER> <EMBEDDING_MODEL>"; a directory with databases but no record predates the local
    model, so its vectors are the stand-in's (LEGACY_EMBEDDING_SPACE).
    """
    path = layout.data_dir / "embedding-space.txt"
    recorded = path.read_text().strip() if path.exists() else (LEGACY_EMBEDDING_SPACE if has_data else "")
    if recorded and recorded != space:
        raise LayoutError(
            f"{layout.data_dir} holds memories embedded with {recorded}; this run embeds with {space}, and the two "
            "kinds of vector cannot be compared. Start over with --fresh, or choose the recorded embeddings "
            "(--embeddings local|openai)."
        )
    path.write_text(space + "\n")


def write_manifest(layout: ApplianceLayout, deployment: Manifest) -> Manifest:
    """Write ``<data-dir>/manifest.toml`` and read it back, exactly as the host proxy will."""
    layout.manifest_path.write_text(manifest_toml(deployment, comment="written by `make run` (devtools/appliance.py)"))
    written = load_manifest(layout.manifest_path)
    if written != deployment:
        raise LayoutError("the manifest did not read back as written")
    return written


def proxy_arguments(layout: ApplianceLayout) -> list[str]:
    """``python -m host_proxy`` arguments: everything comes from the manifest."""
    return ["-m", "host_proxy", "--manifest", str(layout.manifest_path), "--transport", layout.host_transport]


def enclave_arguments(layout: ApplianceLayout, *, isolated: bool) -> list[str]:
    """``python -m devtools.simulated_enclave`` arguments (the simulator stands in for /dev/nsm)."""
    arguments = [
        "-m", "devtools.simulated_enclave", "--transport", layout.enclave_transport, "--pcrs", str(layout.pcrs_path),
        "--test-root-out", str(layout.test_root_path), "--test-pki", str(layout.test_pki_path),
        "--data-dir", str(layout.data_dir / "enclave"),
    ]  # fmt: skip
    # Without a namespace the runtime shares the host's loopback, where the upstreams already listen on
    # the forwarders' addresses: no forwarders, and no isolation either.
    return arguments if isolated else [*arguments, "--no-forwarders"]


def enclave_process_environment() -> dict[str, str]:
    """The enclave process's environment: where Python is, nothing else (configuration comes from the manifest)."""
    environment = {name: os.environ[name] for name in _ENCLAVE_PROCESS_VARIABLES if name in os.environ}
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def _host_port(name: str, url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = parts.port or default
    if not parts.hostname or port is None:
        raise LayoutError(f"{name} URL {url!r} names no host:port")
    return parts.hostname, port


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
