from __future__ import annotations

import asyncio
import os
import socket

import pytest

from host_proxy.addresses import (
    VMADDR_CID_ANY,
    VMADDR_CID_HOST,
    TcpEndpoint,
    UnixEndpoint,
    VsockEndpoint,
    bound_endpoint,
    connect_stream,
    listen_socket,
    parse_endpoint,
)
from host_proxy.errors import AddressError, ConnectError, ConnectRefused, ListenError, TargetUnreachable

VSOCK_PORT_ANY = 0xFFFFFFFF  # VMADDR_PORT_ANY: let the kernel choose
HAS_VSOCK = hasattr(socket, "AF_VSOCK") and os.path.exists("/dev/vsock")


class TestParseErrors:
    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ("443", "expected vsock:CID:PORT"),
            ("http://x:1", "unknown scheme 'http'"),
            ("unix:relative.sock", "absolute path"),
            ("unix:/" + "x" * 200, "longer than 107 bytes"),
            ("tcp::443", "missing host"),
            ("tcp:example.com:https", "port must be a decimal number"),
            ("tcp:example.com:70000", "port 70000 is larger than 65535"),
            ("tcp:::1:443", r"IPv6 addresses in brackets"),
            ("vsock:ANY", "port must be a decimal number"),
            ("vsock:parent:5000", "CID must be a decimal number"),
            ("vsock:16:-1", "port must be a decimal number"),
            ("vsock:4294967296:1", "larger than"),
        ],
    )
    def test_rejected_with_a_clear_message(self, text, match):
        with pytest.raises(AddressError, match=match):
            parse_endpoint(text)


class TestParse:
    @pytest.mark.parametrize(
        ("text", "endpoint", "canonical"),
        [
            ("vsock:16:443", VsockEndpoint(16, 443), "vsock:16:443"),
            ("vsock:ANY:8101", VsockEndpoint(VMADDR_CID_ANY, 8101), "vsock:ANY:8101"),
            ("vsock:any:8101", VsockEndpoint(VMADDR_CID_ANY, 8101), "vsock:ANY:8101"),
            ("vsock:HOST:9000", VsockEndpoint(VMADDR_CID_HOST, 9000), "vsock:HOST:9000"),
            ("unix:/run/enclave.sock", UnixEndpoint("/run/enclave.sock"), "unix:/run/enclave.sock"),
            ("tcp:0.0.0.0:443", TcpEndpoint("0.0.0.0", 443), "tcp:0.0.0.0:443"),
            ("tcp:api.openai.com:443", TcpEndpoint("api.openai.com", 443), "tcp:api.openai.com:443"),
            ("tcp:[::1]:8443", TcpEndpoint("::1", 8443), "tcp:[::1]:8443"),
        ],
    )
    def test_parses_and_prints_back(self, text, endpoint, canonical):
        parsed = parse_endpoint(text)
        assert parsed == endpoint
        assert str(parsed) == canonical
        assert parse_endpoint(str(parsed)) == parsed

    def test_endpoints_are_frozen(self):
        with pytest.raises(AttributeError):
            parse_endpoint("tcp:a:1").port = 2  # type: ignore[misc]


class TestListenUnix:
    def test_a_stale_socket_file_is_replaced(self, short_dir):
        path = short_dir / "stale.sock"
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(path))
        stale.close()  # the file stays, nobody listens
        sock = listen_socket(UnixEndpoint(str(path)), backlog=4)
        try:
            assert sock.getsockname() == str(path)
        finally:
            sock.close()

    def test_a_live_socket_is_not_stolen(self, short_dir):
        path = short_dir / "live.sock"
        first = listen_socket(UnixEndpoint(str(path)), backlog=4)
        try:
            with pytest.raises(ListenError, match="another process is listening"):
                listen_socket(UnixEndpoint(str(path)), backlog=4)
        finally:
            first.close()

    def test_a_regular_file_is_never_removed(self, short_dir):
        path = short_dir / "data.txt"
        path.write_text("keep me")
        with pytest.raises(ListenError, match="not a socket"):
            listen_socket(UnixEndpoint(str(path)), backlog=4)
        assert path.read_text() == "keep me"

    def test_tcp_port_zero_reports_the_chosen_port(self):
        sock = listen_socket(TcpEndpoint("127.0.0.1", 0), backlog=4)
        try:
            bound = bound_endpoint(TcpEndpoint("127.0.0.1", 0), sock)
            assert isinstance(bound, TcpEndpoint) and bound.port == sock.getsockname()[1] != 0
        finally:
            sock.close()


class TestConnectErrors:
    async def test_missing_unix_path_is_refused(self, short_dir):
        with pytest.raises(ConnectRefused, match="No such file"):
            await connect_stream(UnixEndpoint(str(short_dir / "none.sock")), timeout=1, limit=1024)

    async def test_closed_tcp_port_is_refused(self):
        sock = socket.create_server(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        with pytest.raises(ConnectRefused):
            await connect_stream(TcpEndpoint("127.0.0.1", port), timeout=1, limit=1024)

    async def test_unresolvable_name_is_unreachable(self):
        with pytest.raises(TargetUnreachable):
            await connect_stream(TcpEndpoint("no-such-host.invalid", 443), timeout=5, limit=1024)


@pytest.mark.skipif(not HAS_VSOCK, reason="this kernel has no AF_VSOCK or no /dev/vsock")
class TestVsock:
    def test_binding_a_listener_works(self):
        endpoint = parse_endpoint(f"vsock:ANY:{VSOCK_PORT_ANY}")
        sock = listen_socket(endpoint, backlog=8)
        try:
            assert sock.family == socket.AF_VSOCK
            bound = bound_endpoint(endpoint, sock)
            assert isinstance(bound, VsockEndpoint) and bound.cid == VMADDR_CID_ANY and bound.port != VSOCK_PORT_ANY
            with pytest.raises(ListenError, match="cannot listen on vsock:ANY"):
                listen_socket(bound, backlog=8)  # the same port twice
        finally:
            sock.close()

    async def test_connect_failure_is_a_typed_error(self):
        """Whether the kernel says 'refused' or 'no such device', the caller sees a ConnectError."""
        local_cid = _local_cid()
        with pytest.raises(ConnectError):
            await connect_stream(VsockEndpoint(local_cid, 1), timeout=2, limit=1024)

    async def test_round_trip_over_vsock(self):
        endpoint = parse_endpoint(f"vsock:ANY:{VSOCK_PORT_ANY}")
        listener = listen_socket(endpoint, backlog=8)
        try:
            port = bound_endpoint(endpoint, listener).port
            try:
                reader, writer = await connect_stream(VsockEndpoint(_local_cid(), port), timeout=2, limit=1024)
            except TargetUnreachable as error:
                pytest.skip(f"no vsock loopback transport in this kernel (CONFIG_VSOCKETS_LOOPBACK unset): {error}")
            server_side, _ = await asyncio.get_running_loop().sock_accept(listener)
            server_side.sendall(b"over vsock")
            assert await reader.readexactly(10) == b"over vsock"
            server_side.close()
            writer.close()
            await writer.wait_closed()
        finally:
            listener.close()


def _local_cid() -> int:
    import fcntl
    import struct

    with open("/dev/vsock", "rb") as device:
        raw = fcntl.ioctl(device, socket.IOCTL_VM_SOCKETS_GET_LOCAL_CID, b"\0" * 4)
    return struct.unpack("I", raw)[0]
