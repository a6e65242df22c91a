"""MCP at /api/mcp driven by the official ``mcp`` client (PyPI) against the whole stack over HTTP.

Every tool with a delegate-key signature on each HTTP request; the OAuth 2.1 flow (discovery → dynamic
registration → /authorize with PKCE → the owner's signed approval → /token → tool calls → refresh → revoke);
the same through the client's own OAuthClientProvider (it discovers, registers, runs PKCE and redeems by
itself; the test plays the owner's browser); owner tokens; and the auth failures (none, unknown, expired,
revoked, wrong scope) with their WWW-Authenticate.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from devtools.processes import free_port
from tests.e2e.conftest import open_stack
from tests.e2e.mcp_client import DelegateSignature, call, mcp_session
from tests.e2e.signing import body_of, seal_session_header, signed_headers

pytestmark = [pytest.mark.e2e, pytest.mark.database, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

SERVICE_CREDENTIAL = "mcp-test-service-credential"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never dialed: the test reads the code from the approval
TOOLS = {"remember", "recall", "ask", "analyze", "list_namespaces", "forget"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mcp_stack(tmp_path_factory):
    port = free_port()
    env = {"OAUTH_ISSUER_URL": f"http://127.0.0.1:{port}", "OWNER_TOKEN_SERVICE_CREDENTIAL": SERVICE_CREDENTIAL}
    async with open_stack(tmp_path_factory, relayer_env=env, port=port) as running:
        yield running


def signature(stack, *, seal_session: bool = True) -> DelegateSignature:
    return DelegateSignature(stack.account.delegate_private_key_hex, stack.account.account_id,
                             stack.info["memwal_package_id"], seal_session=seal_session)


def session_of(stack, **options):
    return mcp_session(f"{stack.relayer_url}/api/mcp", **options)


async def wait_done(stack, job_id: str) -> dict:
    seed = bytes.fromhex(stack.account.delegate_private_key_hex)
    async with httpx.AsyncClient() as http:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            path = f"/api/remember/{job_id}"
            response = await http.get(stack.relayer_url + path, headers=signed_headers(seed, "GET", path, b"",
                                                                                       account_id=stack.account.account_id))
            body = response.json()
            if body["status"] in ("done", "failed"):
                assert body["status"] == "done", body
                return body
            await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} not done")


async def test_every_tool_with_a_delegate_signature(mcp_stack):
    async with session_of(mcp_stack, auth=signature(mcp_stack)) as session:
        assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS
        accepted = await call(session, "remember", {"text": "My cat is called Biscuit", "namespace": "mcp"})
        await wait_done(mcp_stack, accepted["job_id"])
        recalled = await call(session, "recall", {"query": "cat name", "namespace": "mcp", "limit": 3})
        assert [hit["text"] for hit in recalled["results"]] == ["My cat is called Biscuit"]
        answered = await call(session, "ask", {"question": "What is my cat called?", "namespace": "mcp"})
        assert answered["memories_used"] == 1
        assert answered["memories"][0]["text"] == "My cat is called Biscuit"
        analyzed = await call(session, "analyze", {"text": "I live in Lisbon. I work as a nurse.", "namespace": "mcp"})
        assert analyzed["fact_count"] == len(analyzed["job_ids"]) >= 1
        for job_id in analyzed["job_ids"]:
            await wait_done(mcp_stack, job_id)
        listed = await call(session, "list_namespaces", {})
        assert "mcp" in {entry["name"] for entry in listed["namespaces"]}
        memory_id = recalled["results"][0]["memory_id"]
        forgotten = await call(session, "forget", {"memory_id": memory_id})
        assert forgotten["memory_id"] == memory_id and forgotten["reason"] == "forgotten"
        assert (await call(session, "forget", {"memory_id": memory_id}))["forgotten_at"] == forgotten["forgotten_at"]
        after = await call(session, "recall", {"query": "cat name", "namespace": "mcp", "limit": 3})
        assert memory_id not in {hit["memory_id"] for hit in after["results"]}
        # A client mistake is a tool error with the route's message, not a protocol failure or a 500.
        empty = await session.call_tool("remember", {"text": "", "namespace": "mcp"})
        assert empty.is_error and "remember failed (400)" in empty.content[0].text
    async with session_of(mcp_stack, auth=signature(mcp_stack, seal_session=False)) as session:
        refused = await session.call_tool("recall", {"query": "cat", "namespace": "mcp"})
        assert refused.is_error and "x-seal-session" in refused.content[0].text


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def oauth_tokens(stack, http: httpx.AsyncClient, scopes: str) -> tuple[dict, dict]:
    """Discovery → registration → authorize (PKCE) → signed approval → token: (client, token response)."""
    base = stack.relayer_url
    resource = (await http.get(f"{base}/.well-known/oauth-protected-resource/api/mcp")).json()
    assert resource["resource"] == f"{base}/api/mcp"
    [issuer] = resource["authorization_servers"]
    metadata = (await http.get(f"{issuer.rstrip('/')}/.well-known/oauth-authorization-server")).json()
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    client = (await http.post(metadata["registration_endpoint"], json={
        "redirect_uris": [REDIRECT_URI], "client_name": "mcp e2e", "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"], "scope": scopes,
    })).json()
    verifier, challenge = pkce()
    authorize = await http.get(metadata["authorization_endpoint"], params={
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT_URI, "scope": scopes,
        "code_challenge": challenge, "code_challenge_method": "S256", "state": "xyz", "resource": resource["resource"],
    })
    assert authorize.status_code == 302, authorize.text
    consent_url = authorize.headers["location"]
    consent = (await http.get(consent_url)).json()
    assert consent["client_name"] == "mcp e2e" and consent["redirect_uri"] == REDIRECT_URI
    assert consent["scopes"] == scopes.split()
    body = body_of({"request": consent["request"]})
    seed = bytes.fromhex(stack.account.delegate_private_key_hex)
    approved = await http.post(f"{base}{consent['approve_path']}", content=body, headers=signed_headers(
        seed, "POST", consent["approve_path"], body, account_id=stack.account.account_id))
    assert approved.status_code == 200, approved.text
    redirect = urlsplit(approved.json()["redirect_to"])
    query = parse_qs(redirect.query)
    assert f"{redirect.scheme}://{redirect.netloc}{redirect.path}" == REDIRECT_URI and query["state"] == ["xyz"]
    replayed = await http.post(f"{base}{consent['approve_path']}", content=body, headers=signed_headers(
        seed, "POST", consent["approve_path"], body, account_id=stack.account.account_id))
    assert replayed.status_code == 404  # one approval per request
    token_request = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT_URI,
                     "client_id": client["client_id"], "resource": resource["resource"]}
    wrong = await http.post(metadata["token_endpoint"], data={**token_request, "code_verifier": pkce()[0]})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    token = await http.post(metadata["token_endpoint"], data={**token_request, "code_verifier": verifier})
    assert token.status_code == 200, token.text
    return client, token.json()


async def test_oauth_flow_then_tools_refresh_and_revoke(mcp_stack):
    async with httpx.AsyncClient(follow_redirects=False) as http:
        client, token = await oauth_tokens(mcp_stack, http, "memories.read memories.write")
        assert token["token_type"] == "Bearer" and token["scope"] == "memories.read memories.write"
        session_header = {"x-seal-session": seal_session_header(bytes.fromhex(mcp_stack.account.delegate_private_key_hex),
                                                                mcp_stack.info["memwal_package_id"])}
        bearer = {"authorization": f"Bearer {token['access_token']}", **session_header}
        async with session_of(mcp_stack, headers=bearer) as session:
            accepted = await call(session, "remember", {"text": "I prefer window seats", "namespace": "oauth"})
            done = await wait_done(mcp_stack, accepted["job_id"])
            recalled = await call(session, "recall", {"query": "seat preference", "namespace": "oauth"})
            assert [hit["blob_id"] for hit in recalled["results"]] == [done["blob_id"]]
        refreshed = await http.post(f"{mcp_stack.relayer_url}/token", data={
            "grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": client["client_id"]})
        assert refreshed.status_code == 200, refreshed.text
        new = refreshed.json()
        assert await mcp_status(mcp_stack, token["access_token"]) == 401  # rotation revoked the old pair
        assert await mcp_status(mcp_stack, new["access_token"]) == 200
        # The mcp package's revocation form requires client_secret, empty for a public client.
        revoked = await http.post(f"{mcp_stack.relayer_url}/revoke", data={
            "token": new["refresh_token"], "token_type_hint": "refresh_token", "client_id": client["client_id"],
            "client_secret": ""})
        assert revoked.status_code == 200
        assert await mcp_status(mcp_stack, new["access_token"]) == 401  # revoking one token revokes the grant


class MemoryTokens:
    """The official client's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def test_the_official_clients_oauth_provider_connects_after_the_owners_signed_consent(mcp_stack):
    """The mcp client's own OAuthClientProvider: the 401 → discovery → registration → PKCE → token, by itself;
    the test plays the owner's browser (consent page, signed approval) and the redirect it lands on."""
    seed = bytes.fromhex(mcp_stack.account.delegate_private_key_hex)
    landed: dict[str, str] = {}

    async def owner_in_the_browser(authorization_url: str) -> None:
        async with httpx.AsyncClient() as http:
            consent_url = (await http.get(authorization_url)).headers["location"]
            consent = (await http.get(consent_url)).json()
            body = body_of({"request": consent["request"]})
            approved = await http.post(f"{mcp_stack.relayer_url}{consent['approve_path']}", content=body, headers=signed_headers(
                seed, "POST", consent["approve_path"], body, account_id=mcp_stack.account.account_id))
        landed.update({key: values[0] for key, values in parse_qs(urlsplit(approved.json()["redirect_to"]).query).items()})

    async def redirect_landed() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code=landed["code"], state=landed.get("state"))

    storage = MemoryTokens()
    provider = OAuthClientProvider(
        f"{mcp_stack.relayer_url}/api/mcp",
        OAuthClientMetadata(client_name="official provider", redirect_uris=[AnyUrl(REDIRECT_URI)],
                            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                            scope="memories.read memories.write"),
        storage, redirect_handler=owner_in_the_browser, callback_handler=redirect_landed,
    )
    session_header = {"x-seal-session": seal_session_header(seed, mcp_stack.info["memwal_package_id"])}
    async with session_of(mcp_stack, auth=provider, headers=session_header) as session:
        accepted = await call(session, "remember", {"text": "My dentist is Dr. Okafor", "namespace": "provider"})
        await wait_done(mcp_stack, accepted["job_id"])
        recalled = await call(session, "recall", {"query": "dentist", "namespace": "provider"})
        assert [hit["text"] for hit in recalled["results"]] == ["My dentist is Dr. Okafor"]
    assert storage.tokens is not None and storage.tokens.access_token.startswith("mwoa_")
    assert storage.client is not None and storage.client.client_name == "official provider"


async def mcp_status(stack, token: str, message: dict | None = None) -> int:
    return (await mcp_post(stack, {"authorization": f"Bearer {token}"}, message)).status_code


async def mcp_post(stack, headers: dict[str, str], message: dict | None = None) -> httpx.Response:
    message = message or {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient() as http:
        return await http.post(f"{stack.relayer_url}/api/mcp", json=message, headers={
            "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18", **headers})


def remember_call(text: str) -> dict:
    return {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "remember", "arguments": {"text": text, "namespace": "denied"}}}


async def test_auth_failures_answer_401_or_403_with_www_authenticate(mcp_stack):
    metadata_url = f"{mcp_stack.relayer_url}/.well-known/oauth-protected-resource/api/mcp"
    missing = await mcp_post(mcp_stack, {})
    assert missing.status_code == 401
    assert 'error="invalid_token"' in missing.headers["www-authenticate"]
    assert f'resource_metadata="{metadata_url}"' in missing.headers["www-authenticate"]
    assert await mcp_status(mcp_stack, "mwoa_" + secrets.token_urlsafe(32)) == 401
    # An owner token (memories.read) may list but not write: 403 insufficient_scope naming the scope.
    async with httpx.AsyncClient() as http:
        issued = (await http.post(f"{mcp_stack.relayer_url}/v1/owner-tokens", json={"owner": mcp_stack.account.owner_address},
                                  headers={"x-service-credential": SERVICE_CREDENTIAL})).json()
        async with session_of(mcp_stack, headers={"authorization": f"Bearer {issued['token']}"}) as session:
            listed = await call(session, "list_namespaces", {"limit": 5})
            assert isinstance(listed["namespaces"], list)
        denied = await mcp_post(mcp_stack, {"authorization": f"Bearer {issued['token']}"}, remember_call("not allowed"))
        assert denied.status_code == 403
        assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
        assert 'scope="memories.write"' in denied.headers["www-authenticate"]
        await http.post(f"{mcp_stack.relayer_url}/v1/owner-tokens/revoke", json={"token": issued["token"]},
                        headers={"x-service-credential": SERVICE_CREDENTIAL})
        assert await mcp_status(mcp_stack, issued["token"]) == 401
        # A read-only OAuth grant: the same 403 for a write; once expired, 401.
        _, token = await oauth_tokens(mcp_stack, http, "memories.read")
        assert await mcp_status(mcp_stack, token["access_token"]) == 200
        assert (await mcp_post(mcp_stack, {"authorization": f"Bearer {token['access_token']}"},
                               remember_call("read only"))).status_code == 403
    connection = await asyncpg.connect(mcp_stack.database_url)
    try:
        digest = hashlib.sha256(token["access_token"].encode()).digest()
        await connection.execute("UPDATE oauth_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1", digest)
    finally:
        await connection.close()
    expired = await mcp_post(mcp_stack, {"authorization": f"Bearer {token['access_token']}"})
    assert expired.status_code == 401 and "www-authenticate" in expired.headers
    # A bad signature is the signed routes' 401, and no error is a 500.
    bad = signed_headers(bytes(32), "POST", "/api/mcp", b"{}", account_id=mcp_stack.account.account_id)
    assert (await mcp_post(mcp_stack, bad)).status_code == 401
    assert json.loads(json.dumps(missing.json()))["error"] == "invalid_token"
