"""chain.http_transport against a real TCP server that drops a kept-alive connection, as an idle cut does."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from chain.errors import ChainUnavailable
from chain.http_transport import DEFAULT_TRANSPORT_LIMITS, post_json

ANSWER = b'{"jsonrpc":"2.0","id":1,"result":7}'


class DroppingServer:
    """Answers each request on a connection, then closes it without a word at the request number ``drop_at``."""

    def __init__(self, drop_at: set[int]) -> None:
        self.drop_at = drop_at
        self.requests = 0
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                await reader.readexactly(length)
                self.requests += 1
                if self.requests in self.drop_at:
                    return  # the connection closes with no response: httpx sees RemoteProtocolError
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _serve(drop_at: set[int]):
    server = DroppingServer(drop_at)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    return server, listener, f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"


async def test_a_dropped_keep_alive_connection_is_retried_once_on_a_fresh_one():
    server, listener, url = await _serve({2})
    async with listener, httpx.AsyncClient() as http:
        assert await post_json(http, url, {"id": 1}, DEFAULT_TRANSPORT_LIMITS) == {"jsonrpc": "2.0", "id": 1, "result": 7}
        # The second request goes out on the kept-alive connection, which the server drops unanswered.
        assert await post_json(http, url, {"id": 2}, DEFAULT_TRANSPORT_LIMITS) == {"jsonrpc": "2.0", "id": 1, "result": 7}
    assert server.requests == 3 and server.connections == 2


async def test_a_node_that_keeps_dropping_is_unavailable_after_one_retry():
    server, listener, url = await _serve({1, 2, 3})
    async with listener, httpx.AsyncClient() as http:
        with pytest.raises(ChainUnavailable, match="unreachable: RemoteProtocolError"):
            await post_json(http, url, {"id": 1}, DEFAULT_TRANSPORT_LIMITS)
    assert server.requests == 2
