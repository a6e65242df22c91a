"""Endpoints: ``vsock:CID:PORT``, ``unix:/path`` and ``tcp:HOST:PORT``, parsed into frozen dataclasses.

The same proxy code runs over ``AF_VSOCK`` inside AWS (parent host ↔ enclave) and over ``AF_UNIX`` on a
machine without a vsock transport. ``listen_socket`` opens a non-blocking listening socket for any
family; ``connect`` attaches a protocol to a connection to any family and maps ``OSError`` to the
typed ``ConnectError`` subclasses, so callers only ever handle one exception tree.

    parse_endpoint("vsock:ANY:8101")          -> VsockEndpoint(cid=VMADDR_CID_ANY, port=8101)
    parse_endpoint("unix:/run/enclave.sock")  -> UnixEndpoint(path="/run/enclave.sock")
    parse_endpoint("tcp:[::1]:443")           -> TcpEndpoint(host="::1", port=443)
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass

from .errors import (
    AddressError,
    ConnectError,
    ConnectFailed,
    ConnectRefused,
    ConnectTimeout,
    ListenError,
    TargetUnreachable,
)

MAX_TCP_PORT = 65_535
MAX_VSOCK_PORT = 2**32 - 1
MAX_VSOCK_CID = 2**32 - 1
MAX_UNIX_PATH_BYTES = 107  # sun_path is 108 bytes including the terminating NUL
VMADDR_CID_ANY = getattr(socket, "VMADDR_CID_ANY", 0xFFFFFFFF)
VMADDR_CID_HOST = getattr(socket, "VMADDR_CID_HOST", 2)
VSOCK_CID_NAMES = {"ANY": VMADDR_CID_ANY, "HOST": VMADDR_CID_HOST}

_REFUSED_ERRNOS = {errno.ECONNREFUSED, errno.ENOENT, errno.ECONNRESET}
_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENODEV, errno.EADDRNOTAVAIL, errno.ENETDOWN}


@dataclass(frozen=True)
class VsockEndpoint:
    cid: int
    port: int

    def __str__(self) -> str:
        names = {value: name for name, value in VSOCK_CID_NAMES.items()}
        return f"vsock:{names.get(self.cid, self.cid)}:{self.port}"


@dataclass(frozen=True)
class UnixEndpoint:
    path: str

    def __str__(self) -> str:
        return f"unix:{self.path}"


@dataclass(frozen=True)
class TcpEndpoint:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"


Endpoint = VsockEndpoint | UnixEndpoint | TcpEndpoint


def parse_endpoint(text: str) -> Endpoint:
    """Parse ``vsock:CID:PORT`` (CID may be ANY or HOST), ``unix:/abs/path`` or ``tcp:HOST:PORT``."""
    scheme, separator, rest = text.partition(":")
    if not separator:
        raise AddressError(f"{text!r}: expected vsock:CID:PORT, unix:/path or tcp:HOST:PORT")
    if scheme == "vsock":
        cid_text, _, port_text = rest.partition(":")
        cid = VSOCK_CID_NAMES.get(cid_text.upper())
        if cid is None:
            cid = _parse_int(text, "CID", cid_text, MAX_VSOCK_CID)
        return VsockEndpoint(cid, _parse_int(text, "port", port_text, MAX_VSOCK_PORT))
    if scheme == "unix":
        if not rest.startswith("/"):
            raise AddressError(f"{text!r}: a unix endpoint needs an absolute path (unix:/run/x.sock)")
        if len(os.fsencode(rest)) > MAX_UNIX_PATH_BYTES:
            raise AddressError(f"{text!r}: the path is longer than {MAX_UNIX_PATH_BYTES} bytes")
        return UnixEndpoint(rest)
    if scheme == "tcp":
        host, _, port_text = rest.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise AddressError(f"{text!r}: write IPv6 addresses in brackets, tcp:[::1]:443")
        if not host:
            raise AddressError(f"{text!r}: missing host in tcp:HOST:PORT")
        return TcpEndpoint(host, _parse_int(text, "port", port_text, MAX_TCP_PORT))
    raise AddressError(f"{text!r}: unknown scheme {scheme!r}; use vsock:, unix: or tcp:")


def _parse_int(text: str, what: str, value: str, maximum: int) -> int:
    if not value.isdigit():
        raise AddressError(f"{text!r}: {what} must be a decimal number, got {value!r}")
    number = int(value)
    if number > maximum:
        raise AddressError(f"{text!r}: {what} {number} is larger than {maximum}")
    return number


def listen_socket(endpoint: Endpoint, *, backlog: int) -> socket.socket:
    """Bind and listen; the returned socket is non-blocking and ready for ``loop.sock_accept``."""
    try:
        if isinstance(endpoint, TcpEndpoint):
            sock = _tcp_listen_socket(endpoint, backlog)
        elif isinstance(endpoint, UnixEndpoint):
            _remove_stale_unix_socket(endpoint.path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(endpoint.path)
                sock.listen(backlog)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            try:
                sock.bind((endpoint.cid, endpoint.port))
                sock.listen(backlog)
            except BaseException:
                sock.close()
                raise
    except OSError as error:
        raise ListenError(f"cannot listen on {endpoint}: {error.strerror or error}") from error
    sock.setblocking(False)
    return sock


def _tcp_listen_socket(endpoint: TcpEndpoint, backlog: int) -> socket.socket:
    """A TCP listener whose accepted connections send every write at once (Nagle off).

    ``socket.create_server`` makes its socket with protocol 0, and accepted sockets copy it; asyncio turns
    Nagle off only on sockets whose ``proto`` is ``IPPROTO_TCP`` (``base_events._set_nodelay``). With 0, the
    second small write of an answer (a response's second TLS record) waited for the client's delayed ACK:
    about 40 ms per keep-alive request. So: protocol ``IPPROTO_TCP``, and ``TCP_NODELAY`` on the listener
    itself (Linux copies it to each accepted socket before anyone wraps it).
    """
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((endpoint.host, endpoint.port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def bound_endpoint(endpoint: Endpoint, sock: socket.socket) -> Endpoint:
    """The endpoint a listening socket actually has (port 0 becomes the chosen port)."""
    if isinstance(endpoint, TcpEndpoint):
        return TcpEndpoint(endpoint.host, sock.getsockname()[1])
    if isinstance(endpoint, VsockEndpoint):
        return VsockEndpoint(endpoint.cid, sock.getsockname()[1])
    return endpoint


def remove_unix_socket(endpoint: Endpoint) -> None:
    """Remove the socket file a Unix listener created (other families leave nothing behind)."""
    if isinstance(endpoint, UnixEndpoint):
        try:
            if stat.S_ISSOCK(os.lstat(endpoint.path).st_mode):
                os.unlink(endpoint.path)
        except FileNotFoundError:
            pass


def _remove_stale_unix_socket(path: str) -> None:
    """A socket file nobody accepts on is left over from a crash: remove it. A live one is in use."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "another process is listening on this socket")


ProtocolFactory = Callable[[], asyncio.BaseProtocol]


async def connect(
    endpoint: Endpoint, protocol_factory: ProtocolFactory, *, timeout: float
) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    """Connect ``protocol_factory()`` to ``endpoint`` within ``timeout`` seconds or raise a ``ConnectError``."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            if isinstance(endpoint, TcpEndpoint):
                return await loop.create_connection(protocol_factory, endpoint.host, endpoint.port)
            if isinstance(endpoint, UnixEndpoint):
                return await loop.create_unix_connection(protocol_factory, endpoint.path)
            return await _connect_vsock(endpoint, protocol_factory)
    except TimeoutError as error:
        raise ConnectTimeout(f"{endpoint}: no connection within {timeout:g} s") from error
    except socket.gaierror as error:
        raise TargetUnreachable(f"{endpoint}: {error.strerror or error}") from error
    except OSError as error:
        raise _connect_error(endpoint, error) from error


async def connect_stream(
    endpoint: Endpoint, *, timeout: float, limit: int = 64 * 1024
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``connect`` for callers that want asyncio streams (tests, tools)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    transport, protocol = await connect(endpoint, lambda: asyncio.StreamReaderProtocol(reader, loop=loop), timeout=timeout)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)  # type: ignore[arg-type]


async def _connect_vsock(
    endpoint: VsockEndpoint, protocol_factory: ProtocolFactory
) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, (endpoint.cid, endpoint.port))
        return await loop.create_connection(protocol_factory, sock=sock)
    except BaseException:
        sock.close()
        raise


def _connect_error(endpoint: Endpoint, error: OSError) -> ConnectError:
    message = f"{endpoint}: {error.strerror or error}"
    if error.errno in _REFUSED_ERRNOS:
        return ConnectRefused(message)
    if error.errno in _UNREACHABLE_ERRNOS:
        return TargetUnreachable(message)
    return ConnectFailed(message)
