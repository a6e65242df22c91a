"""Egress from inside the enclave: only to allowlisted ``host:port``, only through local tunnels.

An enclave has no network interface; the host runs a dumb forwarder (host_proxy) per upstream and the
enclave reaches it through a channel to its parent (host_proxy.channels): ``vsock:3:PORT`` on Nitro,
``unix:/path`` locally, ``tcp:ADDRESS:PORT`` in a QEMU test boot. The allowlist is the manifest's
``[[egress]]`` routes, enforced here, inside, and committed to PCR16 with the rest of the enclave
document: the host cannot add destinations.

TLS to upstreams still terminates inside: :class:`EgressTransport` dials the tunnel instead of the
upstream's address, then runs the TLS handshake over it against the *real* hostname, so the host only
ever carries ciphertext and cannot substitute a server. Anything not on the allowlist raises
:class:`EgressDenied` (an ``httpx.ConnectError``) before a connection is attempted.

Text form (tests and probes): comma-separated ``host:port=ENDPOINT``, e.g. ``api.openai.com:443=vsock:3:8101``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Protocol, cast

import anyio
import anyio.abc
import httpcore
import httpx
from httpcore._backends.anyio import AnyIOStream

from host_proxy.addresses import Endpoint, TcpEndpoint, UnixEndpoint, VsockEndpoint, parse_endpoint
from host_proxy.channels import EnclaveChannels
from host_proxy.errors import AddressError
from manifest import EnclaveDocument
from manifest.model import parse_destination

from .errors import EgressDenied

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ALLOWLIST_ENTRIES = 64
MAX_ALLOWLIST_TEXT = 16 * 1024


class EgressAllowlist:
    """``(host, port) → the tunnel endpoint``; hosts are compared lowercase."""

    def __init__(self, routes: Mapping[tuple[str, int], Endpoint]) -> None:
        if len(routes) > MAX_ALLOWLIST_ENTRIES:
            raise ValueError(f"at most {MAX_ALLOWLIST_ENTRIES} egress destinations")
        self._routes = {(host.lower(), port): endpoint for (host, port), endpoint in routes.items()}

    @classmethod
    def from_document(cls, document: EnclaveDocument, channels: EnclaveChannels) -> EgressAllowlist:
        """The manifest's ``[[egress]]`` routes, each through the parent's channel ``vsock_port``."""
        return cls({(route.host, route.port): channels.to_parent(route.vsock_port) for route in document.egress})

    @classmethod
    def parse(cls, text: str) -> EgressAllowlist:
        if len(text) > MAX_ALLOWLIST_TEXT:
            raise ValueError("egress allowlist is too long")
        routes: dict[tuple[str, int], Endpoint] = {}
        for entry in filter(None, (item.strip() for item in text.split(","))):
            destination, separator, endpoint = entry.partition("=")
            if not separator:
                raise ValueError(f"egress entry {entry!r} is not host:port=endpoint")
            key = parse_destination(destination.strip(), where="egress destination")
            if key in routes:
                raise ValueError(f"egress destination {destination!r} is listed twice")
            try:
                routes[key] = parse_endpoint(endpoint.strip())
            except AddressError as error:
                raise ValueError(f"egress entry {entry!r}: {error}") from None
        return cls(routes)

    def text(self) -> str:
        """The text form that :meth:`parse` reads back."""
        return ",".join(f"{host}:{port}={endpoint}" for (host, port), endpoint in sorted(self._routes.items()))

    def destinations(self) -> tuple[str, ...]:
        """``host:port`` strings, sorted."""
        return tuple(sorted(f"{host}:{port}" for host, port in self._routes))

    def tunnel_for(self, host: str, port: int) -> Endpoint:
        endpoint = self._routes.get((host.lower(), port))
        if endpoint is None:
            raise EgressDenied(f"egress to {host}:{port} is not on the enclave's allowlist")
        return endpoint


class TunnelNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore backend whose ``connect_tcp(host, port)`` dials the allowlisted tunnel instead."""

    def __init__(self, allowlist: EgressAllowlist) -> None:
        self._allowlist = allowlist

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        endpoint = self._allowlist.tunnel_for(host, port)
        try:
            with anyio.fail_after(timeout):
                stream = await _connect(endpoint)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"tunnel {endpoint} for {host}:{port} timed out") from None
        except OSError as error:
            raise httpcore.ConnectError(f"tunnel {endpoint} for {host}:{port}: {error.strerror or error}") from None
        return AnyIOStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressDenied("direct unix-socket egress is not allowed; use an allowlisted host:port")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


async def _connect(endpoint: Endpoint) -> anyio.abc.SocketStream:
    if isinstance(endpoint, UnixEndpoint):
        return await anyio.connect_unix(endpoint.path)
    if isinstance(endpoint, TcpEndpoint):
        return await anyio.connect_tcp(endpoint.host, endpoint.port)
    return await _connect_vsock(endpoint)


async def _connect_vsock(endpoint: VsockEndpoint) -> anyio.abc.SocketStream:
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (endpoint.cid, endpoint.port))
    except BaseException:
        sock.close()
        raise
    return await anyio.abc.SocketStream.from_socket(sock)


# httpcore → httpx exceptions, most specific first.
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def _translate(error: Exception) -> Exception:
    if isinstance(error, EgressDenied):
        return error
    for source, target in _EXCEPTIONS:
        if isinstance(error, source):
            return target(str(error))
    return error


class _ClosableStream(Protocol):
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: _ClosableStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except Exception as error:
            translated = _translate(error)
            if translated is error:
                raise
            raise translated from error

    async def aclose(self) -> None:
        await self._stream.aclose()


class EgressTransport(httpx.AsyncBaseTransport):
    """An httpx transport that reaches only allowlisted upstreams, through their tunnels.

    ``ssl_context`` verifies upstream certificates (default: httpx's, i.e. certifi roots); hostnames
    are checked against the URL's host, never the tunnel.
    """

    def __init__(
        self, allowlist: EgressAllowlist, *, ssl_context: ssl.SSLContext | None = None, max_connections: int = 64
    ) -> None:
        self.allowlist = allowlist
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=max_connections,
            http1=True,
            http2=False,
            network_backend=TunnelNetworkBackend(allowlist),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in DEFAULT_PORTS:
            raise EgressDenied(f"egress scheme {url.scheme!r} is not allowed")
        port = url.port or DEFAULT_PORTS[url.scheme]
        self.allowlist.tunnel_for(url.host, port)  # refuse before touching the pool
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core_request)
        except Exception as error:
            translated = _translate(error)
            if translated is error:
                raise
            raise translated from error
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(cast(_ClosableStream, response.stream)),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
