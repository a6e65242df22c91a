"""Who may speak MCP at /api/mcp, what it costs, and which tool they may call.

Every HTTP request to /api/mcp is authenticated one of two ways before the MCP server reads it:

  (1) ``Authorization: Bearer <token>``: an owner token (POST /v1/owner-tokens, scope ``memories.read``) or an
      OAuth access token (relayer/mcp/oauth.py, the scopes the owner approved). Unknown, expired or revoked:
      401 with ``WWW-Authenticate: Bearer error="invalid_token"`` and the protected-resource metadata URL
      (the ``mcp`` package's RequireAuthMiddleware answers it).
  (2) the delegate-key signature every signed route takes (relayer/auth.py), over this request's method, path
      and body: every scope.

The body (bounded like every signed route's) is read first. A ``tools/call`` of a tool outside the caller's
scopes is refused with 403 ``error="insufficient_scope"`` naming the scope. Then the rate limits are charged
the called tool's route weight (1 for any other MCP message), as one signed request to that route would be.
Decryption (recall, ask) needs the client's ``x-seal-session`` header with either kind of auth.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relayer.auth import Authenticator, AuthInfo
from relayer.database.owner_tokens import OwnerTokenStore
from relayer.errors import InvalidRequest, RateLimited
from relayer.mcp.scopes import ALL_SCOPES
from relayer.mcp.tools import McpCaller, McpTool, current_caller
from relayer.observability import Metrics
from relayer.rate_limit import RateLimiter
from relayer.signed_routes import BodyLimits, path_and_query, read_bounded_body
from relayer.validation import parse_json_object

MCP_PATH = "/api/mcp"
SIGNATURE_HEADERS = ("x-public-key", "x-signature")
AccessTokenLoader = Callable[[str], Awaitable[AccessToken | None]]


class McpTokenVerifier:
    """The ``mcp`` package's TokenVerifier over owner tokens and (when OAuth is on) OAuth access tokens."""

    def __init__(self, owner_tokens: OwnerTokenStore, oauth_access: AccessTokenLoader | None, resource_url: str | None) -> None:
        self._owner_tokens = owner_tokens
        self._oauth_access = oauth_access
        self._resource_url = resource_url.rstrip("/") if resource_url else None

    async def verify_token(self, token: str) -> AccessToken | None:
        grant = await self._owner_tokens.grant(token)
        if grant is not None:
            return AccessToken(
                token=token, client_id="owner-token", scopes=list(grant.permissions),
                expires_at=int(grant.expires_at.timestamp()), subject=grant.owner,
                claims={"account_id": grant.account_id, "public_key_hex": "", "rate_key": f"token:{grant.token_id}"},
            )
        if self._oauth_access is None:
            return None
        access = await self._oauth_access(token)
        # A token bound to another resource (RFC 8707) is not for this server.
        if access is not None and access.resource and self._resource_url and access.resource.rstrip("/") != self._resource_url:
            return None
        return access


class McpGate:
    def __init__(
        self, app: ASGIApp, *, authenticator: Authenticator, verifier: McpTokenVerifier, limiter: RateLimiter,
        metrics: Metrics, body_limits: BodyLimits, tools: Mapping[str, McpTool], resource_metadata_url: str | None,
    ) -> None:
        self._authenticator = authenticator
        self._verifier = verifier
        self._limiter = limiter
        self._metrics = metrics
        self._body_limits = body_limits
        self._tools = tools
        self._resource_metadata_url = resource_metadata_url
        # Answers 401 (no verified user) with WWW-Authenticate; scopes are checked per tool below.
        self._require_auth = RequireAuthMiddleware(app, [], resource_metadata_url)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await read_bounded_body(request, self._body_limits)
        tool = self._called_tool(body, request.headers.get("content-type"))
        weight = tool.weight if tool is not None else 1
        caller = await self._caller(request, body, weight)
        if caller is None:  # RequireAuthMiddleware answers 401
            await self._require_auth(scope, _replay(body, receive), send)
            return
        if tool is not None and tool.scope not in caller.scopes:
            await self._insufficient_scope(send, tool.scope)
            return
        token = current_caller.set(caller)
        try:
            await self._require_auth(scope, _replay(body, receive), send)
        finally:
            current_caller.reset(token)

    async def _caller(self, request: Request, body: bytes, weight: int) -> McpCaller | None:
        scope = request.scope
        authorization = request.headers.get("authorization")
        if authorization is not None:
            kind, _, token = authorization.strip().partition(" ")
            access = await self._verifier.verify_token(token.strip()) if kind.lower() == "bearer" and token.strip() else None
            if access is None:
                return None
            claims = access.claims or {}
            public_key_hex = str(claims.get("public_key_hex", ""))
            caller = McpCaller(
                AuthInfo(bytes.fromhex(public_key_hex), public_key_hex or str(claims["rate_key"]), str(access.subject),
                         str(claims["account_id"]), request.headers.get("x-seal-session")),
                frozenset(access.scopes), str(claims["rate_key"]), _request_id(scope),
            )
            denial = await self._limiter.check(caller.rate_key, caller.auth.owner, weight)
            if denial is not None:
                self._metrics.rate_limit_denials.labels(denial.layer.name, MCP_PATH).inc()
                raise denial.error()
        elif any(header in request.headers for header in SIGNATURE_HEADERS):
            try:
                auth = await self._authenticator.authenticate(request.method, path_and_query(request), body, request.headers,
                                                              weight=weight)
            except RateLimited as denied:
                self._metrics.rate_limit_denials.labels(denied.layer, MCP_PATH).inc()
                raise
            access = AccessToken(token="", client_id=f"delegate:{auth.public_key_hex}", scopes=list(ALL_SCOPES),
                                 subject=auth.owner)
            caller = McpCaller(auth, frozenset(ALL_SCOPES), auth.public_key_hex, _request_id(scope))
        else:
            return None
        scope["user"] = AuthenticatedUser(access)
        scope["auth"] = AuthCredentials(list(caller.scopes))
        return caller

    def _called_tool(self, body: bytes, content_type: str | None) -> McpTool | None:
        """The tool a ``tools/call`` message names; None for any other message (the MCP server answers those,
        malformed ones included)."""
        try:
            message = parse_json_object(body, content_type) if body else {}
        except InvalidRequest:
            return None
        params = message.get("params")
        if message.get("method") != "tools/call" or not isinstance(params, dict):
            return None
        name = params.get("name")
        return self._tools.get(name) if isinstance(name, str) else None

    async def _insufficient_scope(self, send: Send, required: str) -> None:
        parts = ['error="insufficient_scope"', f'scope="{required}"', f'error_description="Required scope: {required}"']
        if self._resource_metadata_url:
            parts.append(f'resource_metadata="{self._resource_metadata_url}"')
        body = json.dumps({"error": "insufficient_scope", "error_description": f"Required scope: {required}"}).encode()
        await send({"type": "http.response.start", "status": 403, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", ("Bearer " + ", ".join(parts)).encode()),
        ]})
        await send({"type": "http.response.body", "body": body})


def _request_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hands the already-read body to the MCP transport, then the connection's own events (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
