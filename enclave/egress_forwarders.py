"""Loopback listeners inside the enclave that carry every allowlisted egress through its tunnel.

Client libraries (httpx, ``openai``, asyncpg, redis) dial ``host:port`` over TCP. An enclave has no
network interface besides ``lo``, so for each allowlisted destination the runtime opens a TCP listener on
a loopback address *inside* and copies each accepted connection, byte for byte, into that destination's
tunnel (``vsock:3:PORT`` in production, ``unix:/path`` locally, ``tcp:ADDRESS:PORT`` in a QEMU test boot).
The copy is host_proxy's pump, as a ``forward`` route ``tcp:127.0.0.1:PORT → tunnel``. A destination
without a listener is simply a refused connection: there is no other way out.

Where each destination's listener goes (``plan_forwarders``):

* the host is a loopback literal (``127.0.0.0/8``, ``::1``): on ``host:port`` itself, so localnet URLs
  such as ``http://127.0.0.1:9000`` work unchanged inside an interface-less network namespace, whose
  loopback is not the host's;
* the host is a name: it must resolve *inside* to loopback addresses only, and the listener goes there.
  In the image the runtime writes ``/etc/hosts`` at boot from the manifest (``EnclaveDocument.hosts_file``,
  one address per name, e.g. ``127.0.0.2 api.openai.com``) and the image's ``/etc/nsswitch.conf`` says
  ``hosts: files``: there is no DNS. Clients keep ``https://api.openai.com`` and validate TLS for the
  real name inside, so the host only ever forwards ciphertext;
* anything else refuses boot with :class:`ForwarderError` and the ``/etc/hosts`` line to add.

Two destinations on the same loopback ``address:port`` are refused too (give each name its own 127.0.0.x).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from host_proxy import Endpoint, Limits, Proxy, Route, Settings, TcpEndpoint
from host_proxy.errors import HostProxyError

from .egress import EgressAllowlist
from .errors import RuntimeConfigurationError

logger = logging.getLogger("memwal.enclave.forwarders")

# The enclave's own clients manage their connections (asyncpg and redis pools stay open for long
# idle stretches); an idle cut here would only surface as a broken pooled connection.
FORWARDER_IDLE_TIMEOUT_SECONDS = 0.0
FORWARDER_GRACEFUL_TIMEOUT_SECONDS = 2.0

Resolver = Callable[[str], Sequence[str]]


class ForwarderError(RuntimeConfigurationError):
    """An allowlisted destination cannot get a loopback listener inside the enclave (boot refuses)."""


@dataclass(frozen=True)
class Forwarder:
    """One loopback listener inside the enclave and the tunnel it copies into."""

    destination: str  # "host:port" as allowlisted
    listen: TcpEndpoint  # loopback address inside the enclave
    tunnel: Endpoint

    def route(self) -> Route:
        return Route("forward", self.listen, self.tunnel, name=f"forward {self.destination}")


def resolve_locally(host: str) -> list[str]:
    """Addresses ``host`` resolves to in this process (inside an enclave: ``/etc/hosts`` only)."""
    try:
        answers = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ForwarderError(
            f"egress destination {host!r} does not resolve inside the enclave ({error.strerror}); in the image the "
            f"runtime writes /etc/hosts from the manifest, elsewhere map it to loopback (e.g. '127.0.0.2 {host}')"
        ) from None
    return sorted({str(answer[4][0]) for answer in answers})


def plan_forwarders(allowlist: EgressAllowlist, *, resolve: Resolver = resolve_locally) -> tuple[Forwarder, ...]:
    """One :class:`Forwarder` per allowlisted destination; raises :class:`ForwarderError`."""
    forwarders: list[Forwarder] = []
    taken: dict[tuple[str, int], str] = {}
    for destination in allowlist.destinations():
        host, _, port_text = destination.rpartition(":")
        port = int(port_text)
        address = _loopback_address(host, resolve)
        if (address, port) in taken:
            raise ForwarderError(
                f"egress destinations {taken[(address, port)]} and {destination} both map to {address}:{port}; "
                "give each name its own 127.0.0.x in /etc/hosts"
            )
        taken[(address, port)] = destination
        tunnel = allowlist.tunnel_for(host, port)
        forwarders.append(Forwarder(destination, TcpEndpoint(address, port), tunnel))
    return tuple(forwarders)


def _loopback_address(host: str, resolve: Resolver) -> str:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if not literal.is_loopback:
            raise ForwarderError(
                f"egress destination {host} is an IP address outside loopback; allowlist a name and map it to "
                "127.0.0.x in /etc/hosts, or use a loopback address"
            )
        return str(literal)
    addresses = list(resolve(host))
    outside = [address for address in addresses if not ipaddress.ip_address(address).is_loopback]
    if not addresses or outside:
        found = ", ".join(addresses) or "nothing"
        raise ForwarderError(
            f"egress destination {host!r} resolves to {found} inside the enclave, not only loopback; "
            f"map it to a loopback address in /etc/hosts, e.g. '127.0.0.2 {host}'"
        )
    return addresses[0]


def forwarder_settings(forwarders: Sequence[Forwarder]) -> Settings:
    """host_proxy settings for ``forwarders`` (no metrics listener, no idle cut)."""
    limits = Limits(
        idle_timeout_seconds=FORWARDER_IDLE_TIMEOUT_SECONDS,
        graceful_timeout_seconds=FORWARDER_GRACEFUL_TIMEOUT_SECONDS,
    )
    return Settings(routes=tuple(forwarder.route() for forwarder in forwarders), limits=limits)


@asynccontextmanager
async def running_forwarders(
    allowlist: EgressAllowlist, *, resolve: Resolver = resolve_locally
) -> AsyncIterator[tuple[Forwarder, ...]]:
    """Listen for every allowlisted destination until the block ends; yields the plan.

    Raises :class:`ForwarderError` if a destination has no loopback address or a listener cannot be
    opened (for example because the runtime shares the host's loopback, where the upstream itself
    already listens on that port).
    """
    forwarders = plan_forwarders(allowlist, resolve=resolve)
    if not forwarders:
        yield forwarders
        return
    proxy = Proxy(forwarder_settings(forwarders))
    try:
        await proxy.start()
    except HostProxyError as error:
        raise ForwarderError(f"egress forwarders: {error}") from error
    for forwarder in forwarders:
        logger.info("egress forwarder %s → %s (%s)", forwarder.listen, forwarder.tunnel, forwarder.destination)
    try:
        yield forwarders
    finally:
        await proxy.shutdown()
