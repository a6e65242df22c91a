"""The OAuth provider behind the mcp package's handlers: scopes, budgets of the unauthenticated writes, tokens."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import pytest_asyncio
import redis.asyncio as redis
from mcp.server.auth.provider import AuthorizationParams, AuthorizeError, TokenError
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import AnyUrl

from relayer.database.oauth_grants import Grantee, OAuthGrantStore
from relayer.database.pool import Database
from relayer.errors import RateLimited
from relayer.mcp.oauth import CONSENT_PATH, StoredOAuthProvider, TokenLifetimes
from relayer.rate_limit import RateLimiter

pytestmark = pytest.mark.database

ISSUER = "https://relayer.example"
GRANTEE = Grantee("0x" + "a" * 64, "0x" + "1" * 64, "ab" * 32)


@pytest_asyncio.fixture(loop_scope="session")
async def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def provider(database: Database, redis_client, *, per_key: int = 30) -> StoredOAuthProvider:
    # A fresh key prefix per test: budgets never leak between tests sharing the Redis server.
    limiter = RateLimiter(redis_client, per_minute=1000, per_hour=1000, delegate_per_minute=per_key,
                          key_prefix=os.urandom(4).hex() + ":")
    return StoredOAuthProvider(OAuthGrantStore(database), issuer_url=ISSUER,
                               lifetimes=TokenLifetimes(timedelta(hours=1), timedelta(days=30)), limiter=limiter)


def client_info(client_id: str = "client-1") -> OAuthClientInformationFull:
    return OAuthClientInformationFull(client_id=client_id, redirect_uris=[AnyUrl("http://127.0.0.1:9/cb")],
                                      token_endpoint_auth_method="none")


def params(scopes: list[str] | None) -> AuthorizationParams:
    return AuthorizationParams(state="s", scopes=scopes, code_challenge="c" * 43, redirect_uri=AnyUrl("http://127.0.0.1:9/cb"),
                               redirect_uri_provided_explicitly=True)


async def test_authorize_sends_the_user_agent_to_the_consent_step(database, redis_client) -> None:
    oauth = provider(database, redis_client)
    await oauth.register_client(client_info())
    client = await oauth.get_client("client-1")
    assert client is not None and client.redirect_uris == [AnyUrl("http://127.0.0.1:9/cb")]
    location = await oauth.authorize(client, params(["memories.read"]))
    assert location.startswith(f"{ISSUER}{CONSENT_PATH}?request=")
    with pytest.raises(AuthorizeError) as unknown:
        await oauth.authorize(client, params(["memories.admin"]))
    assert unknown.value.error == "invalid_scope"


async def test_registration_and_authorization_have_budgets(database, redis_client) -> None:
    oauth = provider(database, redis_client, per_key=2)
    await oauth.register_client(client_info("client-1"))
    await oauth.register_client(client_info("client-2"))
    with pytest.raises(RateLimited):
        await oauth.register_client(client_info("client-3"))
    assert await oauth.get_client("client-3") is None
    client = await oauth.get_client("client-1")
    assert client is not None
    await oauth.authorize(client, params(None))
    await oauth.authorize(client, params(None))
    with pytest.raises(AuthorizeError) as spent:
        await oauth.authorize(client, params(None))
    assert spent.value.error == "temporarily_unavailable"


async def test_a_code_becomes_tokens_once_and_a_refresh_cannot_widen_scopes(database, redis_client) -> None:
    oauth = provider(database, redis_client)
    await oauth.register_client(client_info())
    client = await oauth.get_client("client-1")
    assert client is not None
    location = await oauth.authorize(client, params(["memories.read"]))
    store = OAuthGrantStore(database)
    approved = await store.approve(location.rsplit("=", 1)[1], GRANTEE)
    assert approved is not None
    code = await oauth.load_authorization_code(client, approved[1])
    assert code is not None and code.subject == GRANTEE.owner and code.scopes == ["memories.read"]
    token = await oauth.exchange_authorization_code(client, code)
    assert token.scope == "memories.read" and token.expires_in == 3600
    with pytest.raises(TokenError) as reused:
        await oauth.exchange_authorization_code(client, code)
    assert reused.value.error == "invalid_grant"
    access = await oauth.load_access_token(token.access_token)
    assert access is not None and access.subject == GRANTEE.owner
    assert access.claims is not None and access.claims["account_id"] == GRANTEE.account_id
    assert token.refresh_token is not None
    refresh = await oauth.load_refresh_token(client, token.refresh_token)
    assert refresh is not None
    with pytest.raises(TokenError) as widened:
        await oauth.exchange_refresh_token(client, refresh, ["memories.read", "memories.write"])
    assert widened.value.error == "invalid_scope"
    await oauth.revoke_token(access)
    assert await oauth.load_access_token(token.access_token) is None
    assert await oauth.load_refresh_token(client, token.refresh_token) is None
