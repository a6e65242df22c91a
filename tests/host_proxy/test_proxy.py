"""The proxy end to end over real Unix and loopback TCP sockets."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time

import pytest

from host_proxy.addresses import TcpEndpoint, UnixEndpoint, listen_socket
from host_proxy.settings import Limits, Route
from tests.tcp_sockets import accepted_on, dialled_to

from .conftest import close_client, open_client, running_proxy, sample, socket_buffer_bytes, target_server, wait_for


def unix(path) -> UnixEndpoint:
    return UnixEndpoint(str(path))


async def echo_round_trip(endpoint, message: bytes) -> bytes:
    """Send, half-close, read to the end. A connection the proxy closed on us yields b""."""
    reader, writer = await open_client(endpoint)
    try:
        writer.write(message)
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionError:
        return b""
    finally:
        await close_client(writer)


class TestRoundTrips:
    async def test_ingress_tcp_to_unix_enclave(self, short_dir):
        async with target_server("echo", short_dir / "enclave.sock") as enclave:
            route = Route("ingress", TcpEndpoint("127.0.0.1", 0), enclave.endpoint)
            async with running_proxy(route) as proxy:
                public = proxy.addresses[route.label]
                message = b"ciphertext \x00\xff" * 100
                assert await echo_round_trip(public, message) == message
                await wait_for(lambda: proxy.active_connections == 0)
                assert sample(proxy.metrics, "host_proxy_bytes_total", route=route.label, direction="to_target") == len(message)
                assert sample(proxy.metrics, "host_proxy_bytes_total", route=route.label, direction="to_client") == len(message)
                assert sample(proxy.metrics, "host_proxy_connections_closed_total", route=route.label, outcome="closed") == 1

    async def test_egress_unix_to_allowlisted_tcp(self, short_dir):
        async with target_server("echo") as upstream:
            route = Route("egress", unix(short_dir / "egress.sock"), upstream.endpoint)
            async with running_proxy(route) as proxy:
                for index in range(3):
                    message = f"request {index}".encode()
                    assert await echo_round_trip(proxy.addresses[route.label], message) == message
                assert upstream.connections == 3
                await wait_for(lambda: proxy.active_connections == 0)
                assert sample(proxy.metrics, "host_proxy_connections_total", route=route.label) == 3

    async def test_half_close_reaches_the_target_and_the_reply_still_comes_back(self, short_dir):
        async with target_server("reply_after_eof", short_dir / "t.sock") as enclave:
            route = Route("ingress", unix(short_dir / "in.sock"), enclave.endpoint)
            async with running_proxy(route) as proxy:
                reader, writer = await open_client(proxy.addresses[route.label])
                payload = os.urandom(300_000)
                writer.write(payload)
                writer.write_eof()  # the target answers only once it sees this EOF
                reply = await asyncio.wait_for(reader.read(), 5)
                await close_client(writer)
        assert reply == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}".encode()


class TestBytesAreUnaltered:
    async def test_capture_on_both_ends_equals_what_the_other_end_sent(self, short_dir):
        server_payload = os.urandom(3_000_001)
        client_payload = os.urandom(2_500_003)
        async with target_server("stream", short_dir / "t.sock", payload=server_payload) as enclave:
            route = Route("ingress", unix(short_dir / "in.sock"), enclave.endpoint)
            async with running_proxy(route) as proxy:
                reader, writer = await open_client(proxy.addresses[route.label])

                async def send() -> None:
                    view = memoryview(client_payload)
                    for start in range(0, len(view), 12_345):
                        writer.write(view[start : start + 12_345])
                        await writer.drain()
                    writer.write_eof()

                sending = asyncio.create_task(send())
                received = await asyncio.wait_for(reader.read(), 20)
                await sending
                await close_client(writer)
        assert enclave.received == [client_payload]  # what the target captured is exactly what the client sent
        assert received == server_payload  # and the other way round


class TestBackpressure:
    async def test_a_reader_that_does_not_read_keeps_the_bytes_in_flight_bounded(self, short_dir):
        """Offer 64 MiB to a target that reads nothing: the proxy must stop reading, not buffer it all."""
        offered = os.urandom(1 << 20) * 64
        limits = Limits()
        async with target_server("silent", short_dir / "t.sock") as enclave:
            route = Route("ingress", unix(short_dir / "in.sock"), enclave.endpoint)
            async with running_proxy(route, graceful_timeout_seconds=0.2) as proxy:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(proxy.addresses[route.label].path)
                sock.setblocking(False)
                view = memoryview(offered)
                sent = 0
                last_progress = time.monotonic()
                while time.monotonic() - last_progress < 0.5 and sent < len(offered):
                    try:
                        count = sock.send(view[sent : sent + 65536])
                    except BlockingIOError:
                        await asyncio.sleep(0.01)
                        continue
                    sent += count
                    last_progress = time.monotonic()
                in_flight_bound = 4 * socket_buffer_bytes() + limits.max_buffered_bytes_per_direction
                forwarded = sample(proxy.metrics, "host_proxy_bytes_total", route=route.label, direction="to_target")
                sock.close()
        assert sent < len(offered), "the proxy accepted everything: no backpressure"
        assert sent <= in_flight_bound, f"{sent} bytes in flight, bound {in_flight_bound}"
        assert forwarded <= sent

    async def test_a_slow_reader_receives_every_byte_in_order(self, short_dir):
        payload = os.urandom(16 << 20)
        async with target_server("echo", short_dir / "t.sock") as enclave:
            route = Route("ingress", unix(short_dir / "in.sock"), enclave.endpoint)
            async with running_proxy(route) as proxy:
                reader, writer = await open_client(proxy.addresses[route.label])

                async def send() -> None:
                    writer.write(payload)
                    await writer.drain()
                    writer.write_eof()

                sending = asyncio.create_task(send())
                received = bytearray()
                while chunk := await asyncio.wait_for(reader.read(1 << 20), 10):
                    received += chunk
                    if len(received) < 4 << 20:
                        await asyncio.sleep(0.005)  # slow at first: the echo path must push back, not drop
                await sending
                await close_client(writer)
        assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


class TestTimeoutsAndFailures:
    async def test_idle_connection_is_closed_and_activity_keeps_it_open(self, short_dir):
        async with target_server("echo", short_dir / "t.sock") as enclave:
            route = Route("ingress", unix(short_dir / "in.sock"), enclave.endpoint)
            async with running_proxy(route, idle_timeout_seconds=0.3) as proxy:
                reader, writer = await open_client(proxy.addresses[route.label])
                for _ in range(6):  # 0.6 s of traffic, each gap shorter than the idle timeout
                    writer.write(b"ping")
                    assert await asyncio.wait_for(reader.readexactly(4), 2) == b"ping"
                    await asyncio.sleep(0.1)
                started = time.monotonic()
                assert await asyncio.wait_for(reader.read(), 3) == b""  # then silence: the proxy closes
                assert 0.1 <= time.monotonic() - started < 2  # ~0.2 s: the last ping was 0.1 s ago
                await close_client(writer)
                await wait_for(lambda: proxy.active_connections == 0)
                assert sample(proxy.metrics, "host_proxy_connections_closed_total", route=route.label, outcome="idle") == 1

    async def test_refused_target_closes_only_that_connection(self, short_dir):
        async with target_server("echo", short_dir / "good.sock") as good:
            broken = Route("ingress", unix(short_dir / "a.sock"), unix(short_dir / "nobody-listens.sock"))
            working = Route("ingress", unix(short_dir / "b.sock"), good.endpoint)
            async with running_proxy(broken, working) as proxy:
                for _ in range(3):
                    assert await echo_round_trip(proxy.addresses[broken.label], b"x") == b""
                    assert await echo_round_trip(proxy.addresses[working.label], b"still here") == b"still here"
                await wait_for(lambda: proxy.active_connections == 0)
                assert sample(proxy.metrics, "host_proxy_connect_failures_total", route=broken.label, reason="refused") == 3
                assert sample(proxy.metrics, "host_proxy_connections_closed_total", route=working.label, outcome="closed") == 3

    async def test_connect_timeout_closes_the_client_and_the_proxy_keeps_serving(self, short_dir):
        stuck = socket.create_server(("127.0.0.1", 0), backlog=0)  # nobody accepts: the queue fills up
        filler = socket.create_connection(stuck.getsockname())  # takes the only backlog slot
        try:
            async with target_server("echo") as good:
                slow = Route("egress", unix(short_dir / "slow.sock"), TcpEndpoint(*stuck.getsockname()))
                fine = Route("egress", unix(short_dir / "fine.sock"), good.endpoint)
                async with running_proxy(slow, fine, connect_timeout_seconds=0.3) as proxy:
                    started = time.monotonic()
                    attempts = [echo_round_trip(proxy.addresses[slow.label], b"x") for _ in range(2)]
                    attempts.append(echo_round_trip(proxy.addresses[fine.label], b"fine"))
                    assert await asyncio.gather(*attempts) == [b"", b"", b"fine"]
                    assert time.monotonic() - started < 3
                    await wait_for(lambda: proxy.active_connections == 0)
                    assert sample(proxy.metrics, "host_proxy_connect_failures_total", route=slow.label, reason="timeout") == 2
        finally:
            filler.close()
            stuck.close()

    async def test_connection_limit_rejects_the_excess_and_recovers(self, short_dir):
        async with target_server("echo", short_dir / "t.sock") as enclave:
            route = Route("ingress", unix(short_dir / "in.sock"), enclave.endpoint)
            async with running_proxy(route, max_connections=2) as proxy:
                address = proxy.addresses[route.label]
                held = [await open_client(address) for _ in range(2)]
                for reader, writer in held:  # both are really proxied
                    writer.write(b"hi")
                    assert await asyncio.wait_for(reader.readexactly(2), 2) == b"hi"
                assert await echo_round_trip(address, b"third") == b""  # closed at once
                assert sample(proxy.metrics, "host_proxy_connections_rejected_total", route=route.label, reason="limit") == 1
                await close_client(held[0][1])
                await wait_for(lambda: proxy.active_connections == 1)
                assert await echo_round_trip(address, b"room again") == b"room again"
                await close_client(held[1][1])


class TestGracefulShutdown:
    async def test_live_connection_finishes_while_new_ones_are_refused(self, short_dir):
        async with target_server("echo", short_dir / "t.sock") as enclave:
            route = Route("ingress", unix(short_dir / "in.sock"), enclave.endpoint)
            async with running_proxy(route, graceful_timeout_seconds=5) as proxy:
                reader, writer = await open_client(proxy.addresses[route.label])
                writer.write(b"before")
                assert await reader.readexactly(6) == b"before"
                shutting_down = asyncio.create_task(proxy.shutdown())
                await wait_for(lambda: not (short_dir / "in.sock").exists())  # stopped accepting
                with pytest.raises(OSError):
                    await open_client(proxy.addresses[route.label])
                writer.write(b"during")
                assert await reader.readexactly(6) == b"during"  # the live one still works
                assert not shutting_down.done()
                writer.write_eof()
                assert await reader.read() == b""
                await close_client(writer)
                await asyncio.wait_for(shutting_down, 2)
                assert sample(proxy.metrics, "host_proxy_connections_closed_total", route=route.label, outcome="closed") == 1

    async def test_connections_still_open_after_the_graceful_timeout_are_cancelled(self, short_dir):
        async with target_server("echo", short_dir / "t.sock") as enclave:
            route = Route("ingress", unix(short_dir / "in.sock"), enclave.endpoint)
            async with running_proxy(route, graceful_timeout_seconds=0.3) as proxy:
                reader, writer = await open_client(proxy.addresses[route.label])
                writer.write(b"x")
                assert await reader.readexactly(1) == b"x"
                started = time.monotonic()
                await proxy.shutdown()
                assert 0.25 <= time.monotonic() - started < 2
                assert await asyncio.wait_for(reader.read(), 2) == b""
                await close_client(writer)
                assert proxy.active_connections == 0
                assert sample(proxy.metrics, "host_proxy_connections_closed_total", route=route.label, outcome="shutdown") == 1

    async def test_serve_stops_when_the_trigger_fires(self, short_dir):
        from host_proxy.proxy import serve
        from host_proxy.settings import Settings

        async with target_server("echo", short_dir / "t.sock") as enclave:
            listen = unix(short_dir / "in.sock")
            stop = asyncio.Event()
            serving = asyncio.create_task(
                serve(Settings((Route("ingress", listen, enclave.endpoint),)), shutdown_trigger=stop.wait)
            )
            await wait_for(lambda: os.path.exists(listen.path))
            assert await echo_round_trip(listen, b"served") == b"served"
            stop.set()
            await asyncio.wait_for(serving, 5)
            assert not os.path.exists(listen.path)  # the socket file is cleaned up


class TestNagleIsOff:
    """Every TCP socket the proxy accepts or dials sends each write at once (``TCP_NODELAY``).

    With Nagle on, the second small write of an answer (a response's second TLS record) waits for the
    client's delayed ACK: 40 ms per keep-alive request, as `make run` showed before (issue #11)."""

    async def test_ingress_accepted_and_target_dialled_sockets(self):
        async with target_server("echo") as upstream:
            route = Route("ingress", TcpEndpoint("127.0.0.1", 0), upstream.endpoint)
            async with running_proxy(route) as proxy:
                ingress = proxy.addresses[route.label]
                assert isinstance(ingress, TcpEndpoint) and isinstance(upstream.endpoint, TcpEndpoint)
                reader, writer = await open_client(ingress)
                try:
                    writer.write(b"ping")
                    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"  # the pump is attached
                    accepted, dialled = accepted_on(ingress.port), dialled_to(upstream.endpoint.port)
                    assert len(accepted) == 1 and len(dialled) == 1
                    assert accepted[0].no_delay, "the accepted client socket has Nagle on"
                    assert dialled[0].no_delay, "the socket to the target has Nagle on"
                finally:
                    await close_client(writer)

    async def test_side_listener_accepted_sockets(self, short_dir):
        route = Route("ingress", unix(short_dir / "in.sock"), unix(short_dir / "t.sock"))
        async with running_proxy(route, metrics_at=TcpEndpoint("127.0.0.1", 0)) as proxy:
            metrics = proxy.metrics_address
            assert isinstance(metrics, TcpEndpoint)
            _, writer = await open_client(metrics)
            try:
                await wait_for(lambda: len(accepted_on(metrics.port)) == 1)
                assert accepted_on(metrics.port)[0].no_delay
            finally:
                await close_client(writer)

    def test_a_tcp_listener_hands_out_sockets_with_nagle_off(self):
        listener = listen_socket(TcpEndpoint("127.0.0.1", 0), backlog=4)
        with listener, socket.create_connection(listener.getsockname()):
            listener.setblocking(True)
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
                # asyncio disables Nagle itself only on sockets it sees as TCP (base_events._set_nodelay).
                assert accepted.proto == socket.IPPROTO_TCP
