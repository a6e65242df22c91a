"""Where the channels between an enclave and its parent go: every channel is a port number.

On Nitro a channel is a vsock port. The enclave dials its parent at CID 3 (configuration, egress) and
listens on ``VMADDR_CID_ANY`` (ingress); the parent listens on ``VMADDR_CID_ANY`` and dials the enclave's
CID. The same code runs over two stand-ins that this machine (which has no vsock loopback) and a QEMU
test boot can provide:

=========  ==================================  =======================================================
transport  enclave side (``EnclaveChannels``)  parent side (``ParentChannels``)
=========  ==================================  =======================================================
vsock      dial ``vsock:3:N``                  listen ``vsock:ANY:N``
           listen ``vsock:ANY:N``              dial ``vsock:CID:N`` (the manifest's ``host.enclave_cid``)
unix:DIR   dial and listen ``unix:DIR/port-N.sock`` (both sides; a recording tap can sit between two DIRs)
tcp:ADDR   dial ``tcp:ADDR:N`` (the parent,    listen ``tcp:127.0.0.1:N``; dial ``tcp:ADDR:N`` (the enclave,
           e.g. QEMU's 10.0.2.2)               e.g. 127.0.0.1 with a QEMU host forward)
           listen ``tcp:0.0.0.0:N``
=========  ==================================  =======================================================

``tcp:ADDR+K`` shifts every TCP port by ``K`` (channel ``N`` is TCP port ``N+K``), for a host where the
plain numbers are taken; QEMU's forwards can map the two sides' numbers independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .addresses import VMADDR_CID_ANY, Endpoint, TcpEndpoint, VsockEndpoint, parse_endpoint
from .errors import AddressError

PARENT_CID = 3  # the parent instance, as seen from inside a Nitro enclave
TransportKind = Literal["vsock", "unix", "tcp"]
TRANSPORT_HELP = "vsock (Nitro), unix:/DIR (local tests and the appliance) or tcp:ADDRESS[+OFFSET] (a QEMU test boot)"
MAX_TCP_PORT = 65_535


@dataclass(frozen=True)
class _Transport:
    kind: TransportKind
    directory: str = ""  # unix
    address: str = ""  # tcp: the other side's address
    offset: int = 0  # tcp: channel N is TCP port N + offset

    def endpoint(self, port: int, *, vsock_cid: int, tcp_host: str) -> Endpoint:
        """Channel ``port`` as an endpoint: ``vsock_cid`` for vsock, ``tcp_host`` for tcp, the shared path for unix."""
        if self.kind == "vsock":
            return VsockEndpoint(vsock_cid, port)
        if self.kind == "unix":
            return parse_endpoint(f"unix:{self.directory.rstrip('/')}/port-{port}.sock")
        shifted = port + self.offset
        if not 0 < shifted <= MAX_TCP_PORT:
            raise AddressError(f"channel port {port} + offset {self.offset} is not a TCP port")
        return TcpEndpoint(tcp_host, shifted)


def _parse(text: str) -> _Transport:
    if text == "vsock":
        return _Transport("vsock")
    scheme, _, rest = text.partition(":")
    if scheme == "unix" and rest.startswith("/"):
        return _Transport("unix", directory=rest)
    if scheme == "tcp" and rest:
        address, plus, offset_text = rest.partition("+")
        if plus and not offset_text.isdigit():
            raise AddressError(f"transport {text!r}: the offset after '+' must be a decimal number")
        parse_endpoint(f"tcp:{address}:1")  # the address must be usable in an endpoint
        return _Transport("tcp", address=address, offset=int(offset_text or 0))
    raise AddressError(f"transport {text!r}: expected {TRANSPORT_HELP}")


@dataclass(frozen=True)
class EnclaveChannels:
    """The enclave's view: ``to_parent(N)`` to dial, ``listen(N)`` to serve."""

    transport: _Transport

    @classmethod
    def parse(cls, text: str) -> EnclaveChannels:
        return cls(_parse(text))

    @classmethod
    def vsock(cls) -> EnclaveChannels:
        return cls(_Transport("vsock"))

    @property
    def kind(self) -> TransportKind:
        return self.transport.kind

    def to_parent(self, port: int) -> Endpoint:
        return self.transport.endpoint(port, vsock_cid=PARENT_CID, tcp_host=self.transport.address)

    def listen(self, port: int) -> Endpoint:
        return self.transport.endpoint(port, vsock_cid=VMADDR_CID_ANY, tcp_host="0.0.0.0")

    def describe(self, port: int) -> str:
        """How a person reads the parent's channel ``port``: ``vsock (cid 3, port 7000)`` or the endpoint."""
        if self.transport.kind == "vsock":
            return f"vsock (cid {PARENT_CID}, port {port})"
        return str(self.to_parent(port))


@dataclass(frozen=True)
class ParentChannels:
    """The parent's view: ``listen(N)`` for the enclave to dial, ``to_enclave(N)`` to reach its listeners."""

    transport: _Transport
    enclave_cid: int

    @classmethod
    def parse(cls, text: str, *, enclave_cid: int) -> ParentChannels:
        return cls(_parse(text), enclave_cid)

    @property
    def kind(self) -> TransportKind:
        return self.transport.kind

    def listen(self, port: int) -> Endpoint:
        return self.transport.endpoint(port, vsock_cid=VMADDR_CID_ANY, tcp_host="127.0.0.1")

    def to_enclave(self, port: int) -> Endpoint:
        return self.transport.endpoint(port, vsock_cid=self.enclave_cid, tcp_host=self.transport.address)
