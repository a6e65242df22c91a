"""The official ``mcp`` client (PyPI) as the tests drive it: a session over streamable HTTP, signed or bearer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.signing import seal_session_header, signed_headers


class DelegateSignature(httpx2.Auth):
    """Signs every MCP HTTP request with the delegate key, as a signed route expects; sends a Seal session."""

    requires_request_body = True

    def __init__(self, delegate_private_key_hex: str, account_id: str, package_id: str, *, seal_session: bool = True) -> None:
        self.seed = bytes.fromhex(delegate_private_key_hex)
        self.account_id = account_id
        self.session = seal_session_header(self.seed, package_id) if seal_session else None

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        target = request.url.raw_path.decode("latin-1")
        request.headers.update(signed_headers(self.seed, request.method, target, request.content, account_id=self.account_id))
        request.headers["content-type"] = "application/json"
        if self.session:
            request.headers["x-seal-session"] = self.session
        yield request


class HttpxBridge(httpx2.AsyncBaseTransport):
    """Carries the mcp client's httpx2 requests over an httpx client (the attested-TLS client of the appliance)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.http.request(request.method, str(request.url), headers=list(request.headers.raw),
                                           content=await request.aread())
        # httpx already decoded the body: drop the headers that describe its encoding on the wire.
        headers = [(name, value) for name, value in response.headers.raw
                   if name.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")]
        return httpx2.Response(response.status_code, headers=headers, content=response.content, request=request)


@asynccontextmanager
async def mcp_session(url: str, *, auth: httpx2.Auth | None = None, headers: dict[str, str] | None = None,
                      transport: httpx2.AsyncBaseTransport | None = None) -> AsyncIterator[ClientSession]:
    async with httpx2.AsyncClient(auth=auth, headers=headers or {}, timeout=60, transport=transport) as http, \
            streamable_http_client(url, http_client=http) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def call(session: ClientSession, name: str, arguments: dict) -> dict:
    result = await session.call_tool(name, arguments)
    assert not result.is_error, result.content
    return result.structured_content
