"""The manifest as frozen dataclasses, validated on construction, and the enclave document derived from it.

A manifest has five tables. Four of them go to the enclave and are committed to PCR16; ``[host]``
configures only the parent (the host proxy and ``nitro-cli``) and never reaches the enclave::

    format = 1
    [enclave]   tls_hostname, ingress_port                 → EnclaveDocument (sent, committed)
    [relayer]   NAME = value (variables.RELAYER_VARIABLES) → EnclaveDocument (sent, committed)
    [[egress]]  name, destination = "host:port", vsock_port, allow_plaintext → EnclaveDocument (sent, committed)
    [provisioning] sources, retry_seconds, [kms], [peer]   → EnclaveDocument (sent, committed; provisioning.py)
    [host]      enclave_cid, public_ingress, metrics, relayer_metrics, cpu_count, memory_mib, aws_credentials, [host.limits]

Canonical JSON of the enclave document (what the host sends and PCR16 commits to): UTF-8, ASCII-escaped,
keys sorted, no whitespace; defaults filled in; relayer values as the exact environment strings the
relayer receives (integers in decimal, booleans ``true``/``false``, string arrays comma-joined, arrays
of tables as compact sorted-key JSON); egress sorted by name, ``allow_plaintext`` present only when true
(so documents without it hash as before). ``digest()`` is its SHA-384.

Egress policy (relayer/egress_policy.py): under ``EGRESS_POLICY = "private"`` no memory text may leave the
enclave. The document then requires ``EMBEDDING_PROVIDER = "local"``, and the one route that may carry
memory text is the LLM's (the destination of OPENAI_API_BASE), only when marked ``allow_plaintext = true``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ManifestError
from .provisioning import ProvisioningSection
from .variables import PROVISIONABLE_SECRETS, RELAYER_VARIABLES, RUNTIME_VARIABLES, URL_LIST_VARIABLES, URL_VARIABLES

FORMAT_VERSION = 1
# The parent's vsock port where the host proxy serves the enclave document (docs/nitro.md).
CONFIGURATION_PORT = 7000
# The parent's vsock ports of the other host services (docs/nitro.md): AWS credentials for the enclave's KMS
# calls, the enclave's logs, the time samples that keep its clock honest.
CREDENTIALS_PORT = 7001
LOGS_PORT = 7002
TIME_PORT = 7003
# nitro-cli listens here for the enclave's boot heartbeat (aws-nitro-enclaves-cli ENCLAVE_READY_VSOCK_PORT).
HEARTBEAT_PORT = 9000
# The enclave serves the relayer's operator metrics here (plain HTTP on vsock, never on the client port); the host
# proxy's [host].relayer_metrics listener (loopback or a Unix socket on the parent) is the only way to it.
METRICS_PORT = 9464
RESERVED_PORTS = {
    CONFIGURATION_PORT: "the configuration channel",
    CREDENTIALS_PORT: "the credentials channel",
    LOGS_PORT: "the log channel",
    TIME_PORT: "the time channel",
    HEARTBEAT_PORT: "nitro-cli's boot heartbeat",
    METRICS_PORT: "the relayer's operator metrics",
}
DEFAULT_INGRESS_PORT = 8443
DEFAULT_TLS_HOSTNAME = "localhost"
DEFAULT_ENCLAVE_CID = 16
DEFAULT_PUBLIC_INGRESS = "tcp:0.0.0.0:443"
DEFAULT_CPU_COUNT = 2
MIN_ENCLAVE_CID = 4  # 0-2 are reserved by vsock, 3 is the parent
MAX_PORT = 65_535  # channel ports double as TCP ports on the test transport
MAX_EGRESS_ROUTES = 64
MAX_RELAYER_VARIABLES = 128
MAX_VALUE_CHARACTERS = 8 * 1024
MAX_ARRAY_ITEMS = 64
MAX_TABLE_KEYS = 16
MAX_HOSTNAME_CHARACTERS = 253
MAX_DEPTH = 6
FIRST_ASSIGNED_LOOPBACK = ipaddress.IPv4Address("127.0.0.2")

_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TOP_LEVEL = ("format", "enclave", "relayer", "egress", "provisioning", "host")
_ENCLAVE_KEYS = ("tls_hostname", "ingress_port")
_EGRESS_KEYS = ("name", "destination", "vsock_port", "allow_plaintext")
_REQUIRED_EGRESS_KEYS = ("name", "destination", "vsock_port")
_HOST_KEYS = (
    "enclave_cid", "public_ingress", "metrics", "relayer_metrics", "cpu_count", "memory_mib", "aws_credentials", "limits",
)


@dataclass(frozen=True)
class EgressRoute:
    """One allowlisted upstream: the enclave reaches ``host:port`` through the parent's ``vsock_port``."""

    name: str
    host: str
    port: int
    vsock_port: int
    allow_plaintext: bool = False  # the LLM endpoint the operator lets receive memory text under EGRESS_POLICY=private

    @property
    def destination(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"name": self.name, "destination": self.destination, "vsock_port": self.vsock_port}
        if self.allow_plaintext:
            document["allow_plaintext"] = True
        return document


@dataclass(frozen=True)
class EnclaveDocument:
    """Everything the enclave receives from its parent; validated on construction."""

    tls_hostname: str = DEFAULT_TLS_HOSTNAME
    ingress_port: int = DEFAULT_INGRESS_PORT
    relayer: tuple[tuple[str, str], ...] = ()  # (variable, environment string), sorted by name
    egress: tuple[EgressRoute, ...] = ()  # sorted by name
    provisioning: ProvisioningSection = field(default_factory=ProvisioningSection)  # where secrets come from

    def __post_init__(self) -> None:
        _check_hostname("enclave.tls_hostname", self.tls_hostname)
        _check_port("enclave.ingress_port", self.ingress_port)
        if list(self.relayer) != sorted(self.relayer) or list(self.egress) != sorted(self.egress, key=lambda r: r.name):
            raise ManifestError("internal: relayer variables and egress routes must be sorted by name")
        if len(self.egress) > MAX_EGRESS_ROUTES:
            raise ManifestError(f"at most {MAX_EGRESS_ROUTES} [[egress]] routes")
        ports: dict[int, str] = {port: why for port, why in RESERVED_PORTS.items()}
        ports[self.ingress_port] = "enclave.ingress_port"
        if self.ingress_port in RESERVED_PORTS:
            raise ManifestError(f"enclave.ingress_port {self.ingress_port} is reserved for {RESERVED_PORTS[self.ingress_port]}")
        names: set[str] = set()
        destinations: set[tuple[str, int]] = set()
        for route in self.egress:
            if route.name in names:
                raise ManifestError(f"two [[egress]] routes are named {route.name!r}")
            names.add(route.name)
            if (route.host, route.port) in destinations:
                raise ManifestError(f"egress destination {route.destination} is listed twice")
            destinations.add((route.host, route.port))
            if route.vsock_port in ports:
                raise ManifestError(f"egress {route.name!r}: vsock_port {route.vsock_port} is already {ports[route.vsock_port]}")
            ports[route.vsock_port] = f"the vsock_port of egress {route.name!r}"
        self._check_urls_are_allowlisted(destinations)
        self._check_egress_policy()

    def _check_egress_policy(self) -> None:
        environment = dict(self.relayer)
        policy = environment.get("EGRESS_POLICY", "open")
        plaintext = [route for route in self.egress if route.allow_plaintext]
        if policy == "private" and environment.get("EMBEDDING_PROVIDER", "openai") != "local":
            raise ManifestError('relayer.EGRESS_POLICY = "private" keeps memory text inside: set relayer.EMBEDDING_PROVIDER = "local"')
        if plaintext and policy != "private":
            raise ManifestError(
                f"egress {plaintext[0].name!r}: allow_plaintext only means something under relayer.EGRESS_POLICY = "
                '"private" (under "open" the embedding and LLM upstreams receive memory text anyway)'
            )
        if not plaintext:
            return
        llm = url_destination("OPENAI_API_BASE", environment.get("OPENAI_API_BASE") or "https://api.openai.com/v1")
        for route in plaintext:
            if (route.host, route.port) != llm:
                raise ManifestError(
                    f"egress {route.name!r}: allow_plaintext is for the LLM endpoint (relayer.OPENAI_API_BASE, "
                    f"{llm[0]}:{llm[1]}), not {route.destination}"
                )

    @property
    def plaintext_destinations(self) -> tuple[str, ...]:
        """``host:port`` of the routes that may receive memory text (EGRESS_PLAINTEXT_DESTINATIONS), sorted."""
        return tuple(sorted(route.destination for route in self.egress if route.allow_plaintext))

    def _check_urls_are_allowlisted(self, destinations: set[tuple[str, int]]) -> None:
        environment = dict(self.relayer)
        urls = [(name, environment[name]) for name in URL_VARIABLES if environment.get(name)]
        urls += [(name, url) for name in URL_LIST_VARIABLES for url in environment.get(name, "").split(",") if url]
        urls += list(self.provisioning.urls)
        for name, url in urls:
            host, port = url_destination(name, url)
            if (host, port) not in destinations:
                where = name if name.startswith("provisioning.") else f"relayer.{name}"
                raise ManifestError(f"{where} reaches {host}:{port}, which no [[egress]] route allows")

    @property
    def relayer_environment(self) -> dict[str, str]:
        return dict(self.relayer)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "enclave": {"tls_hostname": self.tls_hostname, "ingress_port": self.ingress_port},
            "relayer": dict(self.relayer),
            "egress": [route.as_json() for route in self.egress],
            "provisioning": self.provisioning.as_json(),
        }

    def canonical_json(self) -> bytes:
        return json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    def digest(self) -> bytes:
        """SHA-384 of the canonical JSON: extended into PCR16 and carried in every document's user_data."""
        return hashlib.sha384(self.canonical_json()).digest()

    def hosts_table(self) -> tuple[tuple[str, str], ...]:
        """``(address, name)`` for each egress host name: its own loopback address, in name order.

        Inside the enclave the egress forwarder for ``name:port`` listens on that address, so clients
        keep the real name in their URLs (and TLS checks it) while the connection stays inside.
        """
        names = sorted({route.host for route in self.egress if not _is_ip_literal(route.host) and route.host != "localhost"})
        return tuple((str(FIRST_ASSIGNED_LOOPBACK + index), name) for index, name in enumerate(names))

    def hosts_file(self) -> str:
        """``/etc/hosts`` for the enclave: localhost plus :meth:`hosts_table`; no other name resolves."""
        lines = ["# written by the enclave runtime from the manifest's [[egress]] routes", "127.0.0.1\tlocalhost", "::1\tlocalhost"]
        lines += [f"{address}\t{name}" for address, name in self.hosts_table()]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EnclaveDocument:
        """From the manifest's tables (TOML) or from the enclave document (JSON); ``[host]`` must be gone."""
        _check_depth(data, "manifest", 0)
        _reject_unknown("manifest", data, ("format", "enclave", "relayer", "egress", "provisioning"))
        if data.get("format") != FORMAT_VERSION:
            raise ManifestError(f"format must be {FORMAT_VERSION}, got {data.get('format')!r}")
        enclave = _table(data, "enclave")
        _reject_unknown("enclave", enclave, _ENCLAVE_KEYS)
        relayer = _table(data, "relayer")
        if len(relayer) > MAX_RELAYER_VARIABLES:
            raise ManifestError(f"[relayer] has more than {MAX_RELAYER_VARIABLES} variables")
        egress = data.get("egress", [])
        if not isinstance(egress, list):
            raise ManifestError("egress must be an array of tables ([[egress]])")
        return cls(
            tls_hostname=_string(enclave, "tls_hostname", "enclave", DEFAULT_TLS_HOSTNAME),
            ingress_port=_integer(enclave, "ingress_port", "enclave", DEFAULT_INGRESS_PORT),
            relayer=tuple(sorted((name, _relayer_value(name, value)) for name, value in relayer.items())),
            egress=tuple(sorted((_egress_route(index, item) for index, item in enumerate(egress)), key=lambda r: r.name)),
            provisioning=ProvisioningSection.from_mapping(_table(data, "provisioning")),
        )


@dataclass(frozen=True)
class HostSection:
    """``[host]``: the parent's side of the deployment. Not sent to the enclave, not in the digest."""

    enclave_cid: int = DEFAULT_ENCLAVE_CID  # nitro-cli --enclave-cid; the host proxy's ingress target
    public_ingress: str = DEFAULT_PUBLIC_INGRESS  # where clients connect (host proxy listener)
    metrics: str = ""  # host proxy Prometheus listener, e.g. tcp:127.0.0.1:9100; empty = off
    relayer_metrics: str = ""  # operator listener for the relayer's metrics (loopback tcp: or unix:); empty = off
    cpu_count: int = DEFAULT_CPU_COUNT  # nitro-cli --cpu-count (whole cores: a multiple of threads per core)
    memory_mib: int = 0  # nitro-cli --memory; 0 = computed from the EIF (host_proxy.nitro)
    aws_credentials: str = ""  # "imds" or "file:/path": handed to the enclave for its KMS calls; "" = none
    limits: tuple[tuple[str, int | float], ...] = field(default=())  # host proxy limits; checked by host_proxy

    def __post_init__(self) -> None:
        if not MIN_ENCLAVE_CID <= self.enclave_cid < 2**32 - 1:
            raise ManifestError(f"host.enclave_cid must be between {MIN_ENCLAVE_CID} and {2**32 - 2}")
        if self.cpu_count < 1:
            raise ManifestError("host.cpu_count must be at least 1")
        if self.memory_mib < 0:
            raise ManifestError("host.memory_mib must be >= 0 (0 = computed from the EIF)")
        if self.aws_credentials and self.aws_credentials != "imds" and not self.aws_credentials.startswith("file:/"):
            raise ManifestError("host.aws_credentials must be imds or file:/absolute/path")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> HostSection:
        _reject_unknown("host", data, _HOST_KEYS)
        limits = _table(data, "limits", where="host")
        for key, value in limits.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ManifestError(f"host.limits.{key} must be a number")
        return cls(
            enclave_cid=_integer(data, "enclave_cid", "host", DEFAULT_ENCLAVE_CID),
            public_ingress=_string(data, "public_ingress", "host", DEFAULT_PUBLIC_INGRESS),
            metrics=_string(data, "metrics", "host", ""),
            relayer_metrics=_string(data, "relayer_metrics", "host", ""),
            cpu_count=_integer(data, "cpu_count", "host", DEFAULT_CPU_COUNT),
            memory_mib=_integer(data, "memory_mib", "host", 0),
            aws_credentials=_string(data, "aws_credentials", "host", ""),
            limits=tuple(sorted(limits.items())),
        )


@dataclass(frozen=True)
class Manifest:
    """One deployment: what the enclave gets (``enclave``) and how the parent serves it (``host``)."""

    enclave: EnclaveDocument
    host: HostSection = field(default_factory=HostSection)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Manifest:
        if not isinstance(data, Mapping):
            raise ManifestError("the manifest must be a table")
        _reject_unknown("manifest", data, _TOP_LEVEL)
        host = _table(data, "host")
        enclave_part = {key: value for key, value in data.items() if key != "host"}
        return cls(EnclaveDocument.from_mapping(enclave_part), HostSection.from_mapping(host))


def parse_destination(text: str, *, where: str = "destination") -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets) → (lowercase host, port); a name or an IP literal."""
    if not isinstance(text, str) or len(text) > MAX_HOSTNAME_CHARACTERS + 8:
        raise ManifestError(f"{where} must be a host:port string")
    host, separator, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ManifestError(f"{where} {text!r}: write IPv6 addresses in brackets, [::1]:443")
    if not separator or not port_text.isdigit() or not 0 < int(port_text) <= MAX_PORT:
        raise ManifestError(f"{where} {text!r} is not host:port with a port in 1..{MAX_PORT}")
    host = host.lower()
    if not _is_ip_literal(host):
        _check_hostname(where, host)
    return host, int(port_text)


def url_destination(name: str, url: str) -> tuple[str, int]:
    """The (host, port) an http(s) URL dials; the default port of its scheme when it names none."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError as error:
        raise ManifestError(f"relayer.{name} is not a URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise ManifestError(f"relayer.{name} {url!r} is not an http(s) URL with a host")
    return parts.hostname.lower(), port


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_hostname(where: str, host: str) -> None:
    if not host or len(host) > MAX_HOSTNAME_CHARACTERS or not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        raise ManifestError(f"{where} {host!r} is not a valid host name")


def _check_port(where: str, port: int) -> None:
    if not 1 <= port <= MAX_PORT:
        raise ManifestError(f"{where} must be a port in 1..{MAX_PORT}, got {port}")


def _check_depth(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ManifestError(f"{where} is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        if len(value) > max(MAX_RELAYER_VARIABLES, MAX_EGRESS_ROUTES):
            raise ManifestError(f"{where} has too many keys")
        for key, item in value.items():
            _check_depth(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        if len(value) > max(MAX_ARRAY_ITEMS, MAX_EGRESS_ROUTES):
            raise ManifestError(f"{where} has too many items")
        for index, item in enumerate(value):
            _check_depth(item, f"{where}[{index}]", depth + 1)


def _reject_unknown(where: str, data: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(str(key) for key in set(data) - set(allowed))
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")


def _table(data: Mapping[str, Any], key: str, *, where: str = "") -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ManifestError(f"{where + '.' if where else ''}{key} must be a table")
    return value


def _string(data: Mapping[str, Any], key: str, where: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or len(value) > MAX_VALUE_CHARACTERS:
        raise ManifestError(f"{where}.{key} must be a string")
    return value


def _integer(data: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"{where}.{key} must be an integer")
    return value


def _egress_route(index: int, item: Any) -> EgressRoute:
    where = f"egress[{index}]"
    if not isinstance(item, Mapping):
        raise ManifestError(f"{where} must be a table with name, destination and vsock_port")
    _reject_unknown(where, item, _EGRESS_KEYS)
    for key in _REQUIRED_EGRESS_KEYS:
        if key not in item:
            raise ManifestError(f"{where}: {key} is required")
    name = _string(item, "name", where, "")
    if not _NAME.fullmatch(name):
        raise ManifestError(f"{where}.name {name!r} must be 1-32 of a-z, 0-9 and '-', starting with a letter")
    host, port = parse_destination(item["destination"], where=f"{where}.destination")
    if _is_ip_literal(host) and not ipaddress.ip_address(host).is_loopback:
        raise ManifestError(
            f"{where}.destination {host} is an IP address outside loopback: name the upstream (the enclave resolves "
            "names to its own loopback forwarders)"
        )
    vsock_port = _integer(item, "vsock_port", where, 0)
    _check_port(f"{where}.vsock_port", vsock_port)
    allow_plaintext = item.get("allow_plaintext", False)
    if not isinstance(allow_plaintext, bool):
        raise ManifestError(f"{where}.allow_plaintext must be true or false")
    return EgressRoute(name, host, port, vsock_port, allow_plaintext)


def _relayer_value(name: str, value: Any) -> str:
    """One ``[relayer]`` entry → the exact environment string the relayer will read."""
    if not isinstance(name, str) or name not in RELAYER_VARIABLES:
        if name in PROVISIONABLE_SECRETS:
            raise ManifestError(f"relayer.{name} is a secret: it reaches the enclave only through sealed provisioning")
        if name in RUNTIME_VARIABLES:
            raise ManifestError(f"relayer.{name} is set by the enclave runtime, not the manifest")
        raise ManifestError(f"relayer.{name} is not a relayer variable (see README's configuration table)")
    where = f"relayer.{name}"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        if any("," in item for item in value):
            raise ManifestError(f"{where}: an array item contains ',' (arrays are passed comma-separated)")
        text = ",".join(value)
    elif isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
        text = json.dumps([_plain_table(where, item) for item in value], sort_keys=True, separators=(",", ":"))
    else:
        raise ManifestError(f"{where} must be a string, integer, boolean, array of strings or array of tables")
    if len(text) > MAX_VALUE_CHARACTERS or any(ord(character) < 0x20 for character in text):
        raise ManifestError(f"{where} is longer than {MAX_VALUE_CHARACTERS} characters or has control characters")
    return text


def _plain_table(where: str, item: Mapping[str, Any]) -> dict[str, str | int]:
    if len(item) > MAX_TABLE_KEYS:
        raise ManifestError(f"{where}: a table has more than {MAX_TABLE_KEYS} keys")
    for key, value in item.items():
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ManifestError(f"{where}: table values must be strings or integers ({key!r})")
    return dict(item)
