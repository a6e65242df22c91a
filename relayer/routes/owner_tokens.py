"""Owner bearer tokens (POST /v1/owner-tokens, upstream owner_token.rs) and the public account check
(GET /api/accounts/{owner}/exists, upstream accounts.rs).

Issuance is for a trusted service (a console that has already proven, on its side, that a user controls
``owner``): it authenticates with the operator's service credential in ``x-service-credential``, compared in
constant time; a missing or wrong one, or none configured, is an empty 401 (upstream's gate). Then, as
upstream orders it: address format (400) → per-owner issuance budget (429) → the owner has a MemWal account
(400) → mint. Revocation (POST /v1/owner-tokens/revoke) is ours: upstream's tokens are stateless HMACs that
cannot be revoked before they expire.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memwal_common.secret import Secret
from relayer.api_models import (
    AccountExistsBody,
    OwnerTokenBody,
    OwnerTokenRequest,
    RevokeOwnerTokenBody,
    RevokeOwnerTokenRequest,
)
from relayer.database.accounts import AccountIndex
from relayer.database.owner_tokens import OwnerTokenStore
from relayer.errors import AuthRejected, InvalidValue
from relayer.observability import Metrics
from relayer.openapi import DocumentedRoute, Operation
from relayer.owner_access import PERMISSION_MEMORIES_READ, owner_address
from relayer.rate_limit import RateLimiter
from relayer.signed_routes import BodyLimits, read_bounded_body
from relayer.validation import parse_json_object, validate_request

SERVICE_CREDENTIAL_HEADER = "x-service-credential"
SERVICE_ERRORS = (400, 401, 408, 413, 415, 422, 503)
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class TokenIssuance:
    tokens: OwnerTokenStore
    accounts: AccountIndex
    limiter: RateLimiter  # per owner (and per credential) issuance budget
    metrics: Metrics
    body_limits: BodyLimits
    service_credential: Secret  # empty: issuance is off
    ttl: timedelta

    def check_credential(self, request: Request) -> None:
        offered = request.headers.get(SERVICE_CREDENTIAL_HEADER, "")
        if not self.service_credential or not self.service_credential.matches(offered):  # constant time
            raise AuthRejected("missing or wrong service credential")

    def issue(self) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            self.check_credential(request)
            body = await read_bounded_body(request, self.body_limits)
            payload = validate_request(OwnerTokenRequest, parse_json_object(body, request.headers.get("content-type")))
            owner = owner_address(payload.owner)
            denial = await self.limiter.check("service", owner, 1)
            if denial is not None:
                self.metrics.rate_limit_denials.labels(denial.layer.name, "/v1/owner-tokens").inc()
                raise denial.error()
            account = await self.accounts.by_owner(owner)
            if account is None:
                raise InvalidValue("owner has no MemWalAccount")
            ttl = self.ttl if payload.ttl_seconds is None else min(self.ttl, timedelta(seconds=payload.ttl_seconds))
            issued = await self.tokens.issue(owner, account.account_id, [PERMISSION_MEMORIES_READ], ttl)
            answer = OwnerTokenBody(
                token=issued.token,
                expires_at=issued.expires_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                permissions=list(issued.permissions),
            )
            return JSONResponse(answer.to_json())

        return endpoint

    def revoke(self) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            self.check_credential(request)
            body = await read_bounded_body(request, self.body_limits)
            payload = validate_request(RevokeOwnerTokenRequest, parse_json_object(body, request.headers.get("content-type")))
            return JSONResponse(RevokeOwnerTokenBody(revoked=await self.tokens.revoke(payload.token)).to_json())

        return endpoint


def account_exists(accounts: AccountIndex) -> Endpoint:
    """Public by design (upstream): the account registry is a public on-chain object; this reads the indexer's
    copy of it. Registry presence only, not whether the account is active."""

    async def endpoint(request: Request) -> Response:
        owner = owner_address(request.path_params["owner"])
        return JSONResponse(AccountExistsBody(exists=await accounts.by_owner(owner) is not None).to_json())

    return endpoint


def routes(issuance: TokenIssuance) -> list[DocumentedRoute]:
    credential = ("x-service-credential",)
    return [
        DocumentedRoute(
            Operation("POST", "/v1/owner-tokens", "Issue an owner-scoped read token (service credential)", OwnerTokenBody,
                      request=OwnerTokenRequest, errors=(*SERVICE_ERRORS, 429), alternatives=credential,
                      rate_limit="per service credential and per owner"),
            issuance.issue(),
        ),
        DocumentedRoute(
            Operation("POST", "/v1/owner-tokens/revoke", "Revoke an owner token (service credential)", RevokeOwnerTokenBody,
                      request=RevokeOwnerTokenRequest, errors=SERVICE_ERRORS, alternatives=credential),
            issuance.revoke(),
        ),
        DocumentedRoute(
            Operation("GET", "/api/accounts/{owner}/exists", "Whether an address owns a MemWal account", AccountExistsBody,
                      errors=(400, 503)),
            account_exists(issuance.accounts),
        ),
    ]
