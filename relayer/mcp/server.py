"""The MCP endpoint and its OAuth routes, ready to mount: ``build_mcp(services)``.

The MCP server is the ``mcp`` package's low-level ``Server`` behind its ``StreamableHTTPSessionManager`` in
stateless JSON mode: every POST /api/mcp carries one JSON-RPC message and its own credentials, so any relayer
instance can answer any request (no sticky sessions, no session state to lose on a restart). The session
manager's task group runs in a task of its own from ``McpMount.start`` (relayer/serve.py's start_relayer): the
enclave runtime starts the relayer after provisioning, long after any ASGI lifespan, so nothing here relies on one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.auth.routes import build_resource_metadata_url, create_auth_routes, create_protected_resource_routes
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from pydantic import AnyHttpUrl
from starlette.routing import BaseRoute

from relayer import __version__
from relayer.api_models import JsonRpcAnswer, JsonRpcMessage
from relayer.mcp.gate import MCP_PATH, McpGate, McpTokenVerifier
from relayer.mcp.oauth import (
    StoredOAuthProvider,
    TokenLifetimes,
    approve_route,
    consent_route,
    registration_options,
    revocation_options,
)
from relayer.mcp.scopes import ALL_SCOPES
from relayer.mcp.tools import McpTool, RouteHandlers, run_tool, tools
from relayer.openapi import DocumentedRoute, Operation
from relayer.routes import analyze, forgetting, memories, owners, search
from relayer.services import Services

SERVER_NAME = "memwal-relayer"
INSTRUCTIONS = (
    "Long-term memory for this user, encrypted with Seal and stored on Walrus. remember stores a fact; recall "
    "finds memories by meaning; ask answers from them; analyze extracts and remembers the facts in a text; "
    "list_namespaces lists the user's namespaces."
)


@dataclass(frozen=True)
class McpMount:
    routes: list[BaseRoute]
    session_manager: StreamableHTTPSessionManager

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        """Run the session manager until ``stack`` closes (it must be running before /api/mcp is served)."""
        running, stop = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with self.session_manager.run():
                running.set()
                await stop.wait()

        task = asyncio.create_task(hold(), name="mcp-session-manager")
        ready = asyncio.create_task(running.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not running.is_set():
            ready.cancel()
            await task  # raises what stopped it

        async def close() -> None:
            stop.set()
            await task

        stack.push_async_callback(close)


def route_handlers(services: Services) -> RouteHandlers:
    return RouteHandlers(
        remember=memories.remember(services.preparer, services.job_runner, services.jobs, services.storage, services.metadata),
        recall=search.recall(services.embedder, services.reader, services.vectors, services.metadata),
        ask=search.ask(services.embedder, services.reader, services.llm),
        analyze=analyze.analyze(services.embedder, services.reader, services.llm, services.limiter, services.preparer,
                                services.job_runner, services.storage),
        namespaces=owners.namespaces(services.namespaces),
        forget=forgetting.forget_memory(services.forgetting),
    )


def mcp_server(available: dict[str, McpTool], retry_after_seconds: int) -> Server[Any]:
    async def list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[tool.definition() for tool in available.values()])

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = available.get(params.name)
        if tool is None:
            return types.CallToolResult(content=[types.TextContent(text=f"unknown tool {params.name!r}")], is_error=True)
        return await run_tool(tool, params.arguments, retry_after_seconds=retry_after_seconds)

    return Server(SERVER_NAME, version=__version__, instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool)


def build_mcp(services: Services) -> McpMount:
    settings = services.settings
    available = tools(route_handlers(services))
    manager = StreamableHTTPSessionManager(
        app=mcp_server(available, settings.retry_after_seconds), stateless=True, json_response=True,
        max_request_body_size=settings.max_body_bytes,
    )
    routes: list[BaseRoute] = []
    oauth_access = None
    resource_url = resource_metadata_url = None
    if settings.oauth_issuer_url:
        issuer = AnyHttpUrl(settings.oauth_issuer_url)
        resource_url = settings.oauth_issuer_url.rstrip("/") + MCP_PATH
        resource_metadata_url = str(build_resource_metadata_url(AnyHttpUrl(resource_url)))
        provider = StoredOAuthProvider(services.oauth_grants, issuer_url=settings.oauth_issuer_url, lifetimes=TokenLifetimes(
            timedelta(seconds=settings.oauth_access_token_ttl_seconds), timedelta(seconds=settings.oauth_refresh_token_ttl_seconds),
        ), limiter=services.limiter)
        oauth_access = provider.load_access_token
        routes += create_auth_routes(provider, issuer, client_registration_options=registration_options(),
                                     revocation_options=revocation_options())
        routes += create_protected_resource_routes(AnyHttpUrl(resource_url), [issuer], scopes_supported=list(ALL_SCOPES))
        routes += [consent_route(services.oauth_grants), approve_route(services.signed, services.oauth_grants)]
    gate = McpGate(
        StreamableHTTPASGIApp(manager), authenticator=services.signed.authenticator,
        verifier=McpTokenVerifier(services.owner_reads.tokens, oauth_access, resource_url), limiter=services.limiter,
        metrics=services.metrics, body_limits=services.signed.body_limits, tools=available,
        resource_metadata_url=resource_metadata_url,
    )
    # POST only: the stateless transport has no session for a GET stream or a DELETE to end.
    operation = Operation("POST", MCP_PATH, "MCP over streamable HTTP (JSON-RPC; tools remember, recall, ask, analyze, list_namespaces, forget)",
                          JsonRpcAnswer, request=JsonRpcMessage, signed=True, errors=(202, 403, 406, 429),  # 202: a notification
                          alternatives=("mcp-bearer",), error_models={400: JsonRpcAnswer, 406: JsonRpcAnswer},
                          rate_limit="write budget: a tool call its route's weight (1–5), another message 1")
    routes.append(DocumentedRoute(operation, cast(Any, gate)))
    return McpMount(routes, manager)
