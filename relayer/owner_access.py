"""The wrapper of the owner-scoped read routes (GET /v1/owners/{owner}/…): who may read, and their own budget.

A caller proves it speaks for ``{owner}`` in one of two ways (upstream ``auth::verify_read_api_auth``):

  (1) ``Authorization: Bearer <owner token>`` (POST /v1/owner-tokens): a live token whose owner is ``{owner}``
      and whose permissions include ``memories.read``. An unknown, expired or revoked token is 401; a token for
      another owner or without the permission is 403.
  (2) no Authorization header: the delegate-key signature every signed route takes (relayer/auth.py), over the
      path and query; the key's account must be ``{owner}``'s (else 403).

Then the read budget is charged: the same three layers as the write routes (relayer/rate_limit.py) under their
own keys and limits (OWNER_READ_RATE_LIMIT_*), so listing never spends the budget remember and recall need. A
bearer's "delegate key" layer is its token. Reads carry no body: any body is refused (413) unread past the cap.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chain.address import normalize_address
from relayer.api_models import ResponseModel
from relayer.auth import Authenticator
from relayer.database.owner_tokens import OwnerTokenStore
from relayer.errors import AuthRejected, InvalidValue, NotOwner
from relayer.observability import Metrics
from relayer.openapi import DocumentedRoute, Operation, QueryParameter
from relayer.rate_limit import RateLimiter
from relayer.signed_routes import BodyLimits, path_and_query, read_bounded_body

PERMISSION_MEMORIES_READ = "memories.read"
BEARER_SCHEME = "bearer"
_FULL_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class OwnerReader:
    """The caller of an owner-scoped read, once verified."""

    owner: str  # normalized Sui address, equal to the path's {owner} (compared lowercased)
    account_id: str
    via_token: bool


@dataclass(frozen=True)
class OwnerReadContext:
    reader: OwnerReader
    query: dict[str, str]
    request_id: str


OwnerReadHandler = Callable[[OwnerReadContext], Awaitable[ResponseModel]]


def owner_address(raw: str) -> str:
    """A full ``0x`` + 64-hex address, lowercased; anything else is 400 (upstream's validate_sui_address)."""
    if not _FULL_ADDRESS.match(raw):
        raise InvalidValue("owner must be a 0x-prefixed 32-byte Sui address (66 characters)")
    return raw.lower()


def bearer_token(header: str) -> str:
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != BEARER_SCHEME or not token.strip():
        raise AuthRejected("Authorization must be `Bearer <owner token>`")
    return token.strip()


@dataclass(frozen=True)
class OwnerReadRoutes:
    authenticator: Authenticator
    tokens: OwnerTokenStore
    limiter: RateLimiter  # the read budget, separate from the write routes' limiter
    metrics: Metrics
    body_limits: BodyLimits

    def route(
        self, path: str, handler: OwnerReadHandler, *, summary: str, response: type[ResponseModel],
        errors: Sequence[int] = (), query: Sequence[QueryParameter] = (),
    ) -> DocumentedRoute:
        operation = Operation(
            method="GET", path=path, summary=summary, response=response, signed=True, errors=(403, *errors),
            query=tuple(query), alternatives=("owner-token",), rate_limit="owner read budget, weight 1",
        )
        return DocumentedRoute(operation, self._endpoint(handler, operation))

    def _endpoint(self, handler: OwnerReadHandler, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = request.scope.get("state", {}).get("request_id", "")
            body = await read_bounded_body(request, self.body_limits)
            # Auth before the path is looked at, and a malformed {owner} is simply not the caller's (403), as upstream.
            reader, limiter_key = await self._verify(request, body, request.path_params["owner"].lower())
            denial = await self.limiter.check(limiter_key, reader.owner, 1)
            if denial is not None:
                self.metrics.rate_limit_denials.labels(denial.layer.name, operation.path).inc()
                raise denial.error()
            result = await handler(OwnerReadContext(reader, dict(request.query_params), request_id))
            return JSONResponse(result.to_json(), status_code=operation.status)

        return endpoint

    async def _verify(self, request: Request, body: bytes, path_owner: str) -> tuple[OwnerReader, str]:
        authorization = request.headers.get("authorization")
        if authorization is not None:
            grant = await self.tokens.grant(bearer_token(authorization))
            if grant is None:
                raise AuthRejected("unknown, expired or revoked owner token")
            if grant.owner != path_owner:
                raise NotOwner("owner mismatch")
            if PERMISSION_MEMORIES_READ not in grant.permissions:
                raise NotOwner(f"the token lacks the {PERMISSION_MEMORIES_READ} permission")
            return OwnerReader(grant.owner, grant.account_id, via_token=True), f"token:{grant.token_id}"
        auth = await self.authenticator.authenticate(request.method, path_and_query(request), body, request.headers)
        owner = normalize_address(auth.owner)
        if owner != path_owner:
            raise NotOwner("owner mismatch")
        return OwnerReader(owner, auth.account_id, via_token=False), auth.public_key_hex
