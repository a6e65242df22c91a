"""MCP's OAuth 2.1 authorization server: the ``mcp`` package's handlers over our PostgreSQL store.

The protocol endpoints (metadata, /authorize with PKCE S256, /token, /register, /revoke) are the official
``mcp`` package's (``mcp.server.auth.routes.create_auth_routes``); this module is the provider behind them
(``OAuthAuthorizationServerProvider``) plus the one step the package leaves to the server: the owner's
consent. There are no passwords: /authorize redirects the user agent to ``GET /oauth/consent?request=…``,
which describes the request (client, redirect URI, scopes), and the owner approves it with
``POST /oauth/approve`` signed by one of the account's delegate keys (the signature every signed route takes).
The approval answers the client's redirect URI carrying the one-time code. Codes live 10 minutes; access and
refresh tokens expire (OAUTH_ACCESS_TOKEN_TTL_SECS, OAUTH_REFRESH_TOKEN_TTL_SECS), are stored hashed, never
logged, and are revocable (/revoke revokes the whole grant). Refreshing rotates both tokens.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, timedelta

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relayer.api_models import OAuthApproval, OAuthApproveRequest, OAuthConsentBody
from relayer.database.oauth_grants import Grantee, OAuthGrantStore, PendingAuthorization, TokenGrant
from relayer.errors import InvalidValue, NotFound
from relayer.mcp.scopes import ALL_SCOPES
from relayer.openapi import DocumentedRoute
from relayer.rate_limit import RateLimiter
from relayer.signed_routes import RequestContext, SignedRoutes

CONSENT_PATH = "/oauth/consent"
APPROVE_PATH = "/oauth/approve"
AUTHORIZATION_TTL = timedelta(minutes=10)  # to approve the request, then to redeem its code
MAX_REQUEST_ID_LENGTH = 64
REGISTRATION_BUDGET = "oauth-registration"  # rate-limit keys of the unauthenticated writes
AUTHORIZATION_BUDGET = "oauth-authorization"


@dataclass(frozen=True)
class TokenLifetimes:
    access: timedelta
    refresh: timedelta


def registration_options() -> ClientRegistrationOptions:
    return ClientRegistrationOptions(enabled=True, valid_scopes=list(ALL_SCOPES), default_scopes=list(ALL_SCOPES))


def revocation_options() -> RevocationOptions:
    return RevocationOptions(enabled=True)


def access_token_of(token: str, grant: TokenGrant) -> AccessToken:
    return AccessToken(
        token=token, client_id=grant.client_id, scopes=list(grant.scopes), expires_at=int(grant.expires_at.timestamp()),
        resource=grant.resource, subject=grant.grantee.owner,
        claims={"account_id": grant.grantee.account_id, "public_key_hex": grant.grantee.public_key_hex,
                "rate_key": f"oauth:{grant.grant_id}"},
    )


class StoredOAuthProvider:
    """``OAuthAuthorizationServerProvider`` over ``OAuthGrantStore``.

    Registration and /authorize write rows before anyone authenticated, so both spend the write routes' rate
    limits under keys of their own: registrations share one budget (429 past it), authorization requests one
    per client and one in all (``temporarily_unavailable`` past them).
    """

    def __init__(self, store: OAuthGrantStore, *, issuer_url: str, lifetimes: TokenLifetimes, limiter: RateLimiter) -> None:
        self._store = store
        self._issuer = issuer_url.rstrip("/")
        self._lifetimes = lifetimes
        self._limiter = limiter

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        information = await self._store.client(client_id)
        return None if information is None else OAuthClientInformationFull.model_validate(information)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        if client_info.client_id is None:
            raise InvalidValue("a registered client needs a client_id")
        denial = await self._limiter.check(REGISTRATION_BUDGET, REGISTRATION_BUDGET, 1)
        if denial is not None:
            raise denial.error()
        await self._store.register_client(client_info.client_id, client_info.model_dump(mode="json", exclude_none=True))

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if client.client_id is None:
            raise AuthorizeError("unauthorized_client", "unknown client")
        scopes = tuple(params.scopes or ALL_SCOPES)
        unknown = sorted(set(scopes) - set(ALL_SCOPES))
        if unknown:
            raise AuthorizeError("invalid_scope", f"unknown scopes: {' '.join(unknown)}")
        if await self._limiter.check(f"{AUTHORIZATION_BUDGET}:{client.client_id}", AUTHORIZATION_BUDGET, 1) is not None:
            raise AuthorizeError("temporarily_unavailable", "too many authorization requests; retry later")
        request_id = secrets.token_urlsafe(24)
        await self._store.open_authorization(PendingAuthorization(
            request_id, client.client_id, scopes, params.code_challenge, str(params.redirect_uri),
            params.redirect_uri_provided_explicitly, params.state, params.resource,
            self._store.now() + AUTHORIZATION_TTL,
        ))
        return construct_redirect_uri(self._issuer + CONSENT_PATH, request=request_id)

    async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str) -> AuthorizationCode | None:
        approved = await self._store.code(client.client_id or "", authorization_code)
        if approved is None:
            return None
        pending = approved.authorization
        return AuthorizationCode(
            code=authorization_code, scopes=list(pending.scopes), expires_at=pending.expires_at.timestamp(),
            client_id=pending.client_id, code_challenge=pending.code_challenge, redirect_uri=AnyUrl(pending.redirect_uri),
            redirect_uri_provided_explicitly=pending.redirect_uri_explicit, resource=pending.resource,
            subject=approved.grantee.owner,
        )

    async def exchange_authorization_code(self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode) -> OAuthToken:
        redeemed = await self._store.redeem(authorization_code.code, self._lifetimes.access, self._lifetimes.refresh)
        if redeemed is None:
            raise TokenError("invalid_grant", "authorization code already used or expired")
        pair, grant = redeemed
        return self._token(pair.access_token, pair.refresh_token, grant.scopes)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        grant = await self._store.token(refresh_token, "refresh")
        if grant is None or grant.client_id != client.client_id:
            return None
        return RefreshToken(token=refresh_token, client_id=grant.client_id, scopes=list(grant.scopes),
                            expires_at=int(grant.expires_at.timestamp()), resource=grant.resource, subject=grant.grantee.owner)

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]) -> OAuthToken:
        granted = scopes or refresh_token.scopes
        if not set(granted) <= set(refresh_token.scopes):
            raise TokenError("invalid_scope", "a refresh cannot widen the grant's scopes")
        pair = await self._store.rotate(refresh_token.token, granted, self._lifetimes.access, self._lifetimes.refresh)
        if pair is None:
            raise TokenError("invalid_grant", "refresh token already used, revoked or expired")
        return self._token(pair.access_token, pair.refresh_token, tuple(granted))

    async def load_access_token(self, token: str) -> AccessToken | None:
        grant = await self._store.token(token, "access")
        return None if grant is None else access_token_of(token, grant)

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        await self._store.revoke(token.token)

    async def exchange_identity_assertion(self, client: OAuthClientInformationFull, params: object) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "identity assertions are not accepted")

    def _token(self, access: str, refresh: str, scopes: tuple[str, ...] | list[str]) -> OAuthToken:
        return OAuthToken(access_token=access, expires_in=int(self._lifetimes.access.total_seconds()), scope=" ".join(scopes),
                          refresh_token=refresh)


def consent_route(store: OAuthGrantStore) -> Route:
    """``GET /oauth/consent?request=…``: what the owner is asked to approve (public: it shows no secret)."""

    async def endpoint(request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        pending = await store.pending(request_id) if 0 < len(request_id) <= MAX_REQUEST_ID_LENGTH else None
        if pending is None:
            raise NotFound("no pending authorization request with that id (unknown, expired or already approved)")
        information = await store.client(pending.client_id) or {}
        body = OAuthConsentBody(
            request=pending.request_id, client_id=pending.client_id, client_name=str(information.get("client_name") or ""),
            redirect_uri=pending.redirect_uri, scopes=list(pending.scopes),
            expires_at=pending.expires_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            approve_path=APPROVE_PATH,
        )
        return JSONResponse(body.to_json())

    return Route(CONSENT_PATH, endpoint, methods=["GET"])


def approve_route(signed: SignedRoutes, store: OAuthGrantStore) -> DocumentedRoute:
    """``POST /oauth/approve`` signed by a delegate key of the account the grant will act for."""

    async def handle(ctx: RequestContext[OAuthApproveRequest]) -> OAuthApproval:
        grantee = Grantee(ctx.auth.owner, ctx.auth.account_id, ctx.auth.public_key_hex)
        approved = await store.approve(ctx.body.request, grantee)
        if approved is None:
            raise NotFound("no pending authorization request with that id (unknown, expired or already approved)")
        pending, code = approved
        return OAuthApproval(redirect_to=construct_redirect_uri(pending.redirect_uri, code=code, state=pending.state))

    return signed.route(APPROVE_PATH, handle, summary="Approve an MCP client's OAuth authorization request",
                        request=OAuthApproveRequest, response=OAuthApproval, errors=(404,))
