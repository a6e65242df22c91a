from __future__ import annotations

import asyncio

from host_proxy.addresses import TcpEndpoint, UnixEndpoint
from host_proxy.metrics import ProxyMetrics
from host_proxy.metrics_server import MAX_REQUEST_HEAD_BYTES, MetricsServer
from host_proxy.settings import Route

from .conftest import close_client, open_client, running_proxy, target_server, wait_for

SECRET_PAYLOAD = b"Authorization: Bearer do-not-leak-0123456789"


async def http_get(endpoint, request: bytes) -> tuple[str, bytes]:
    reader, writer = await open_client(endpoint)
    writer.write(request)
    response = await asyncio.wait_for(reader.read(), 5)
    await close_client(writer)
    head, _, body = response.partition(b"\r\n\r\n")
    return head.decode().split("\r\n")[0], body


class TestExposition:
    async def test_metrics_are_served_and_carry_no_payload(self, short_dir):
        async with target_server("echo", short_dir / "t.sock") as enclave:
            route = Route("ingress", UnixEndpoint(str(short_dir / "in.sock")), enclave.endpoint, name="https")
            async with running_proxy(route, metrics_at=TcpEndpoint("127.0.0.1", 0)) as proxy:
                reader, writer = await open_client(proxy.addresses["https"])
                writer.write(SECRET_PAYLOAD)
                assert await reader.readexactly(len(SECRET_PAYLOAD)) == SECRET_PAYLOAD
                await close_client(writer)
                await wait_for(lambda: proxy.active_connections == 0)
                status, body = await http_get(proxy.metrics_address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        text = body.decode()
        assert status == "HTTP/1.0 200 OK"
        assert 'host_proxy_connections_total{route="https"} 1.0' in text
        assert f'host_proxy_bytes_total{{direction="to_target",route="https"}} {float(len(SECRET_PAYLOAD))}' in text
        assert 'host_proxy_connect_failures_total{reason="timeout",route="https"} 0.0' in text
        assert 'host_proxy_connections_active{route="https"} 0.0' in text
        assert "host_proxy_connection_duration_seconds_bucket" in text
        assert b"do-not-leak" not in body

    async def test_other_paths_and_methods_and_oversized_requests(self):
        server = MetricsServer(TcpEndpoint("127.0.0.1", 0), ProxyMetrics().render)
        await server.start()
        try:
            assert (await http_get(server.address, b"GET / HTTP/1.1\r\n\r\n"))[0] == "HTTP/1.0 404 Not Found"
            assert (await http_get(server.address, b"POST /metrics HTTP/1.1\r\n\r\n"))[0].endswith("405 Method Not Allowed")
            status, body = await http_get(server.address, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_HEAD_BYTES)
            assert (status, body) == ("", b"")  # dropped, not buffered
            assert (await http_get(server.address, b"GET /metrics HTTP/1.0\r\n\r\n"))[0] == "HTTP/1.0 200 OK"
        finally:
            await server.close()
