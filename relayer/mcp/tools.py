"""The MCP tools: each is one HTTP route's handler, called with the MCP caller's identity.

A tool validates its arguments with the route's request model (its JSON Schema is the tool's input schema),
builds the ``RequestContext`` the route's handler takes and returns the route's response body as the tool's
structured result, so a tool and its route cannot drift apart. A tool's scope and rate-limit weight are its
route's (``relayer/mcp/gate.py`` checks both before the MCP server sees the call). Failures are tool errors
whose text is what the route would answer (relayer/http_errors.py's mapping), never a traceback.

forget is not registered yet: per-memory forget is being built on another branch (issue #13 item 3).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from pydantic import BaseModel

from relayer.api_models import (
    AnalyzeRequest,
    AskRequest,
    ForgetMemoryRequest,
    ListNamespacesArguments,
    RecallRequest,
    RememberRequest,
    ResponseModel,
)
from relayer.auth import AuthInfo
from relayer.http_errors import answer_for
from relayer.mcp.scopes import SCOPE_READ, SCOPE_WRITE
from relayer.owner_access import OwnerReadContext, OwnerReader
from relayer.rate_limit import route_weight
from relayer.signed_routes import RequestContext
from relayer.validation import validate_request

logger = logging.getLogger("memwal.mcp")

ToolHandler = Callable[["McpCaller", BaseModel, str], Awaitable[ResponseModel]]


@dataclass(frozen=True)
class McpCaller:
    """Who is calling, once the gate verified them, and what they may do."""

    auth: AuthInfo  # owner, account, the delegate key that signed (or approved the OAuth grant), x-seal-session
    scopes: frozenset[str]
    rate_key: str  # the rate limiter's per-key layer: the delegate key, or the token
    request_id: str  # the HTTP request's (x-request-id): one MCP message per request (stateless transport)


@dataclass(frozen=True)
class McpTool:
    name: str
    description: str
    scope: str
    route: str  # the HTTP route it is: its rate-limit weight and its path in the handler's context
    arguments: type[BaseModel]
    handler: ToolHandler

    @property
    def weight(self) -> int:
        return route_weight(self.route)

    def definition(self) -> types.Tool:
        return types.Tool(name=self.name, description=self.description, input_schema=self.arguments.model_json_schema())


current_caller: ContextVar[McpCaller | None] = ContextVar("mcp_caller", default=None)


def signed_route_tool(
    name: str, description: str, scope: str, route: str, arguments: type[BaseModel],
    handler: Callable[[RequestContext[Any]], Awaitable[ResponseModel]],
) -> McpTool:
    """A tool that is a signed route's handler."""

    async def call(caller: McpCaller, body: BaseModel, request_id: str) -> ResponseModel:
        return await handler(RequestContext(auth=caller.auth, body=body, request_id=request_id, path=route,
                                            path_params={}, query={}))

    return McpTool(name, description, scope, route, arguments, call)


def namespaces_tool(handler: Callable[[OwnerReadContext], Awaitable[ResponseModel]]) -> McpTool:
    """list_namespaces: the owner read route GET /v1/owners/{owner}/namespaces for the caller's own account."""

    async def call(caller: McpCaller, body: BaseModel, request_id: str) -> ResponseModel:
        query = {key: str(value) for key, value in body.model_dump(exclude_none=True).items()}
        reader = OwnerReader(caller.auth.owner, caller.auth.account_id, via_token=not caller.auth.public_key)
        return await handler(OwnerReadContext(reader, query, request_id))

    return McpTool("list_namespaces", "List the namespaces of the caller's memories, a page at a time (next_cursor).",
                   SCOPE_READ, "/v1/owners/{owner}/namespaces", ListNamespacesArguments, call)


@dataclass(frozen=True)
class RouteHandlers:
    """The route handlers the tools call (built once, by the route modules' factories)."""

    remember: Callable[[RequestContext[Any]], Awaitable[ResponseModel]]
    recall: Callable[[RequestContext[Any]], Awaitable[ResponseModel]]
    ask: Callable[[RequestContext[Any]], Awaitable[ResponseModel]]
    analyze: Callable[[RequestContext[Any]], Awaitable[ResponseModel]]
    namespaces: Callable[[OwnerReadContext], Awaitable[ResponseModel]]
    forget: Callable[[RequestContext[Any]], Awaitable[ResponseModel]]


def tools(handlers: RouteHandlers) -> dict[str, McpTool]:
    listed = [
        signed_route_tool("remember", "Store a memory (encrypted in the enclave, stored on Walrus). Returns a job id.",
                          SCOPE_WRITE, "/api/remember", RememberRequest, handlers.remember),
        signed_route_tool("recall", "Search the caller's memories by meaning and return the closest ones, decrypted. "
                          "Needs the client's x-seal-session header.", SCOPE_READ, "/api/recall", RecallRequest, handlers.recall),
        signed_route_tool("ask", "Answer a question from the caller's memories. Needs the client's x-seal-session header.",
                          SCOPE_READ, "/api/ask", AskRequest, handlers.ask),
        signed_route_tool("analyze", "Extract facts from a text and remember each one. Returns their job ids.",
                          SCOPE_WRITE, "/api/analyze", AnalyzeRequest, handlers.analyze),
        namespaces_tool(handlers.namespaces),
        signed_route_tool("forget", "Forget one memory by its id (memory_id from recall): it leaves search at once. "
                          "Forgetting it again gives the same answer.", SCOPE_WRITE, "/api/forget/memory",
                          ForgetMemoryRequest, handlers.forget),
    ]
    return {tool.name: tool for tool in listed}


async def run_tool(tool: McpTool, arguments: Mapping[str, Any] | None, *, retry_after_seconds: int) -> types.CallToolResult:
    """Call ``tool`` for the current caller; every failure becomes a tool error with the route's message."""
    caller = current_caller.get()
    request_id = caller.request_id if caller is not None else ""
    try:
        if caller is None:  # the gate sets it for every request; a missing one is a wiring mistake
            raise RuntimeError("MCP tool called without a verified caller")
        body = validate_request(tool.arguments, dict(arguments or {}))
        result = (await tool.handler(caller, body, caller.request_id)).to_json()
    except Exception as exc:  # mapped to the route's answer; unknown ones are logged with the trace id
        answer = answer_for(exc, trace_id=request_id, retry_after_seconds=retry_after_seconds)
        if answer.status == 500:
            logger.error("unhandled error in MCP tool %s (traceId: %s)", tool.name, request_id, exc_info=exc)
        elif answer.log_detail:
            logger.warning("%s in MCP tool %s (traceId: %s): %s", answer.status, tool.name, request_id, answer.log_detail)
        message = (answer.body or {}).get("error") or {401: "authentication failed", 403: "forbidden"}.get(answer.status, "error")
        return types.CallToolResult(content=[types.TextContent(text=f"{tool.name} failed ({answer.status}): {message}")],
                                    is_error=True)
    return types.CallToolResult(content=[types.TextContent(text=json.dumps(result))], structured_content=result)
