"""Egress from inside the enclave: only to allowlisted ``host:port``, only through local tunnels.

An enclave has no network interface; the host runs a dumb forwarder (host_proxy) per upstream and the
enclave reaches it over vsock (production, ``vsock:3:PORT`` — CID 3 is the parent) or a unix socket
(development and tests, ``unix:/path``). The allowlist is enforced here, inside, and committed to
PCR16 (config_commitment.py): the host cannot add destinations.

TLS to upstreams still terminates inside: :class:`EgressTransport` dials the tunnel instead of the
upstream's address, then runs the TLS handshake over it against the *real* hostname, so the host only
ever carries ciphertext and cannot substitute a server. Anything not on the allowlist raises
:class:`EgressDenied` (an ``httpx.ConnectError``) before a connection is attempted.

Allowlist syntax (``ENCLAVE_EGRESS``): comma-separated ``host:port=unix:/path`` or ``host:port=vsock:CID:PORT``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

import anyio
import httpcore
import httpx
from httpcore._backends.anyio import AnyIOStream

from .errors import EgressDenied

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_ALLOWLIST_ENTRIES = 64
MAX_ALLOWLIST_TEXT = 16 * 1024
PARENT_CID = 3


@dataclass(frozen=True)
class TunnelEndpoint:
    """Where the tunnel to one upstream starts: a unix socket path or a vsock (cid, port)."""

    kind: str  # "unix" | "vsock"
    path: str = ""
    cid: int = 0
    port: int = 0

    @classmethod
    def parse(cls, text: str) -> TunnelEndpoint:
        if text.startswith("unix:") and len(text) > 5:
            return cls(kind="unix", path=text[5:])
        if text.startswith("vsock:"):
            parts = text.split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                cid, port = int(parts[1]), int(parts[2])
                if 0 <= cid < 2**32 and 0 < port < 2**32:
                    return cls(kind="vsock", cid=cid, port=port)
        raise ValueError(f"tunnel endpoint {text!r} is not unix:/path or vsock:CID:PORT")

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.kind == "unix" else f"vsock:{self.cid}:{self.port}"


class EgressAllowlist:
    """``(host, port) → TunnelEndpoint``; hosts are compared lowercase."""

    def __init__(self, routes: Mapping[tuple[str, int], TunnelEndpoint]) -> None:
        if len(routes) > MAX_ALLOWLIST_ENTRIES:
            raise ValueError(f"at most {MAX_ALLOWLIST_ENTRIES} egress destinations")
        self._routes = {(host.lower(), port): endpoint for (host, port), endpoint in routes.items()}

    @classmethod
    def parse(cls, text: str) -> EgressAllowlist:
        if len(text) > MAX_ALLOWLIST_TEXT:
            raise ValueError("egress allowlist is too long")
        routes: dict[tuple[str, int], TunnelEndpoint] = {}
        for entry in filter(None, (item.strip() for item in text.split(","))):
            destination, separator, endpoint = entry.partition("=")
            if not separator:
                raise ValueError(f"egress entry {entry!r} is not host:port=endpoint")
            key = _parse_destination(destination.strip())
            if key in routes:
                raise ValueError(f"egress destination {destination!r} is listed twice")
            routes[key] = TunnelEndpoint.parse(endpoint.strip())
        return cls(routes)

    def destinations(self) -> tuple[str, ...]:
        """``host:port`` strings, sorted (what the configuration commitment includes)."""
        return tuple(sorted(f"{host}:{port}" for host, port in self._routes))

    def tunnel_for(self, host: str, port: int) -> TunnelEndpoint:
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
        socket_options: Iterable | None = None,
    ) -> httpcore.AsyncNetworkStream:
        endpoint = self._allowlist.tunnel_for(host, port)
        try:
            with anyio.fail_after(timeout):
                if endpoint.kind == "unix":
                    stream = await anyio.connect_unix(endpoint.path)
                else:
                    stream = await _connect_vsock(endpoint.cid, endpoint.port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"tunnel {endpoint} for {host}:{port} timed out") from None
        except OSError as error:
            raise httpcore.ConnectError(f"tunnel {endpoint} for {host}:{port}: {error.strerror or error}") from None
        return AnyIOStream(stream)

    async def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None):
        raise EgressDenied("direct unix-socket egress is not allowed; use an allowlisted host:port")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


async def _connect_vsock(cid: int, port: int) -> anyio.abc.SocketStream:
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (cid, port))
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


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream) -> None:
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
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def _parse_destination(text: str) -> tuple[str, int]:
    host, separator, port_text = text.rpartition(":")
    host = host.strip("[]").lower()
    if not separator or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"egress destination {text!r} is not host:port")
    if not all(character.isalnum() or character in ".-:" for character in host) or not host.isascii():
        raise ValueError(f"egress host {host!r} has invalid characters")
    return host, int(port_text)
