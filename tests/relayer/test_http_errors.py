"""relayer.http_errors: the one mapping from errors to HTTP, unit by unit and through the whole app.

Outages are real: PostgreSQL, Redis, the Sui node, the sidecar and the OpenAI endpoint are addresses nothing
listens on. Client mistakes go through the in-process relayer with its real dependencies.
"""

from __future__ import annotations

import asyncio
import base64
import json
from contextlib import AsyncExitStack

import pytest
import pytest_asyncio

from chain.errors import ChainProtocolError, ChainUnavailable
from devtools.processes import free_port
from localnet.cli import create_account
from memwal_common.redis_client import fail_fast_redis
from memwal_common.secret import Secret
from relayer.database.errors import (
    ConstraintViolation,
    DatabaseError,
    DatabaseUnavailable,
    InvalidCursor,
    QuotaExceeded,
)
from relayer.database.pool import connect
from relayer.errors import (
    AuthRejected,
    AuthUpstreamUnavailable,
    BodyTimeout,
    BodyTooLarge,
    FeatureUnavailable,
    FieldError,
    InvalidValue,
    LegacySdk,
    MalformedBody,
    NonceStoreUnavailable,
    NotFound,
    NotOwner,
    RateLimited,
    SealAccessDenied,
    SealSessionInvalid,
    SealSessionMissing,
    SidecarFailed,
    SidecarRejected,
    SidecarUnavailable,
    UnsupportedContentType,
    UpstreamFailed,
    UpstreamUnavailable,
)
from relayer.http_errors import AUTH_UPSTREAM_UNAVAILABLE, answer_for
from relayer.serve import sidecar_limits
from relayer.settings import Settings
from relayer.sidecar_client import SidecarClient
from tests.e2e.signing import body_of, signed_headers
from tests.relayer.in_process import open_relayer
from tests.relayer.test_routes import wait_done

pytestmark = pytest.mark.database

RETRY_AFTER = {"Retry-After": "5"}
UNAVAILABLE = {"error": "Upstream temporarily unavailable (traceId: t)"}


class TestAnswerFor:
    @pytest.mark.parametrize("error,status,body", [
        (MalformedBody("bad json"), 400, {"error": "bad json"}),
        (InvalidValue("out of range"), 400, {"error": "out of range"}),
        (SealSessionMissing(), 400, {"error": "This endpoint needs the x-seal-session header (sent by the official SDKs)"}),
        (SealSessionInvalid("x-seal-session rejected: expired"), 400, {"error": "x-seal-session rejected: expired"}),
        (SidecarRejected("publisher rejected the blob as too large"), 400, {"error": "publisher rejected the blob as too large"}),
        (InvalidCursor("bad cursor"), 400, {"error": "bad cursor"}),
        (QuotaExceeded("Storage quota exceeded: 1.0MB used of 1.0MB allowed"), 402,
         {"error": "Storage quota exceeded: 1.0MB used of 1.0MB allowed"}),
        (NotOwner("not yours"), 403, {"error": "not yours"}),
        (SealAccessDenied("denied"), 403, {"error": "denied"}),
        (NotFound("Job x not found"), 404, {"error": "Job x not found"}),
        (ConstraintViolation("id of another owner"), 409, {"error": "Conflicting write"}),
        (UnsupportedContentType("json please"), 415, {"error": "json please"}),
        (FieldError("missing field `text`"), 422, {"error": "missing field `text`"}),
        (FeatureUnavailable("ask needs an LLM"), 501, {"error": "ask needs an LLM"}),
        (UpstreamFailed("embedding failed: AuthenticationError"), 502, {"error": "Upstream request failed (traceId: t)"}),
        (ChainProtocolError("odd shape"), 502, {"error": "Upstream request failed (traceId: t)"}),
        (DatabaseError("unknown sqlstate"), 500, {"error": "Internal server error (traceId: t)"}),
        (RuntimeError("a bug"), 500, {"error": "Internal server error (traceId: t)"}),
    ])
    def test_status_and_body(self, error, status, body):
        answer = answer_for(error, trace_id="t", retry_after_seconds=5)
        assert (answer.status, answer.body, answer.headers) == (status, body, {})

    @pytest.mark.parametrize("error,status", [(BodyTooLarge("too big"), 413), (BodyTimeout("too slow"), 408)])
    def test_answers_before_the_body_ends_close_the_connection(self, error, status):
        answer = answer_for(error, trace_id="t", retry_after_seconds=5)
        assert (answer.status, answer.body, answer.headers) == (status, {"error": error.message}, {"Connection": "close"})

    @pytest.mark.parametrize("error", [
        DatabaseUnavailable("refused"), NonceStoreUnavailable("down"), SidecarUnavailable("gone"),
        SidecarFailed("sidecar /walrus/upload: TransferFailed", kind="TransferFailed"), UpstreamUnavailable("embedding 503"),
        ChainUnavailable("timeout"),
    ])
    def test_outages_are_503_with_retry_after_and_no_detail(self, error):
        answer = answer_for(error, trace_id="t", retry_after_seconds=5)
        assert (answer.status, answer.body, answer.headers) == (503, UNAVAILABLE, RETRY_AFTER)
        assert answer.log_detail and str(error) in answer.log_detail

    def test_auth_outage_tells_the_sdk_to_retry(self):
        answer = answer_for(AuthUpstreamUnavailable("redis down"), trace_id="t", retry_after_seconds=5)
        assert (answer.status, answer.body) == (503, UNAVAILABLE)
        assert answer.headers == {**RETRY_AFTER, "x-auth-error": AUTH_UPSTREAM_UNAVAILABLE}

    def test_auth_failures_have_empty_bodies(self):
        assert (answer_for(AuthRejected("bad signature"), trace_id="t", retry_after_seconds=5).status,
                answer_for(AuthRejected("bad signature"), trace_id="t", retry_after_seconds=5).body) == (401, None)
        stale = answer_for(AuthRejected("stale", auth_error="ERR_TIMESTAMP_OUT_OF_BOUNDS"), trace_id="t", retry_after_seconds=5)
        assert (stale.status, stale.body, stale.headers) == (401, None, {"x-auth-error": "ERR_TIMESTAMP_OUT_OF_BOUNDS"})
        legacy = answer_for(LegacySdk("no nonce"), trace_id="t", retry_after_seconds=5)
        assert (legacy.status, legacy.body) == (426, None)

    def test_rate_limited(self):
        answer = answer_for(RateLimited(layer="delegate_key", limit="30 weighted-requests/min", retry_after_seconds=60),
                            trace_id="t", retry_after_seconds=5)
        assert (answer.status, answer.headers) == (429, {"Retry-After": "60"})
        assert answer.body == {"error": "Rate limit exceeded", "layer": "delegate_key", "limit": "30 weighted-requests/min",
                               "retry_after_seconds": 60}


@pytest_asyncio.fixture(loop_scope="session")
async def make_relayer(localnet, database_url, redis_url):
    """``await make_relayer(env=..., database=..., cache=..., sidecar=...)``: a relayer with some dependency broken."""
    async with AsyncExitStack() as stack:

        async def make(**overrides):
            return await open_relayer(localnet, stack, database_url=database_url, redis_url=redis_url, **overrides)

        make.stack = stack
        yield make


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def account(localnet):
    return await create_account(localnet, label="edge")


def assert_outage(response, *, during_auth: bool) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"].startswith("Upstream temporarily unavailable (traceId: ")
    assert response.json()["error"].endswith(f"{response.headers['x-request-id']})")
    assert ("x-auth-error" in response.headers) is during_auth
    if during_auth:
        assert response.headers["x-auth-error"] == AUTH_UPSTREAM_UNAVAILABLE


class TestOutagesThroughTheApp:
    async def test_postgresql_unreachable_is_503(self, make_relayer, account):
        closed = await connect(f"postgresql://memwal@127.0.0.1:{free_port()}/memwal", min_size=0, max_size=1, migrate=False)
        make_relayer.stack.push_async_callback(closed.close)
        relayer = await make_relayer(database=closed, start_jobs=False)
        assert_outage(await relayer.call(account, "POST", "/api/stats", {}), during_auth=True)

    async def test_redis_unreachable_is_503_that_the_sdk_retries(self, make_relayer, account):
        closed = fail_fast_redis(f"redis://127.0.0.1:{free_port()}", timeout_seconds=1)
        make_relayer.stack.push_async_callback(closed.aclose)
        relayer = await make_relayer(cache=closed)
        assert_outage(await relayer.call(account, "POST", "/api/stats", {}), during_auth=True)

    @pytest.mark.parametrize("protocol,variable", [
        ("graphql", "SUI_GRAPHQL_URL"), ("grpc", "SUI_GRPC_URL"), ("jsonrpc", "SUI_RPC_URL")])
    async def test_sui_unreachable_is_503_during_auth(self, make_relayer, account, protocol, variable):
        relayer = await make_relayer(env={"SUI_PROTOCOL": protocol, variable: f"http://127.0.0.1:{free_port()}"})
        assert_outage(await relayer.call(account, "POST", "/api/stats", {}), during_auth=True)

    async def test_sidecar_unreachable_is_503(self, make_relayer, account, tmp_path):
        settings = Settings()
        gone = SidecarClient.over_unix_socket(str(tmp_path / "no-sidecar.sock"), Secret("t" * 32), sidecar_limits(settings))
        make_relayer.stack.push_async_callback(gone.close)
        relayer = await make_relayer(sidecar=gone)
        assert_outage(await relayer.call(account, "POST", "/api/remember", {"text": "hello"}), during_auth=False)
        health = await relayer.client.get("/health")
        assert health.status_code == 503 and (health.json()["status"], health.json()["write_ready"]) == ("degraded", False)

    async def test_embedding_endpoint_unreachable_is_503(self, make_relayer, account):
        relayer = await make_relayer(env={"OPENAI_API_BASE": f"http://127.0.0.1:{free_port()}/v1"})
        assert_outage(await relayer.call(account, "POST", "/api/embed", {"text": "hello"}), during_auth=False)
        # The LLM (chat) of analyze goes to the same upstream: 503 too, never a 500.
        assert_outage(await relayer.call(account, "POST", "/api/analyze", {"text": "I live in Lisbon"}), during_auth=False)


class TestUpstreamRefusals:
    async def test_embedding_endpoint_refusing_the_key_is_502(self, make_relayer, account):
        relayer = await make_relayer(env={"OPENAI_API_KEY": "sk-wrong"})
        response = await relayer.call(account, "POST", "/api/embed", {"text": "hello"})
        assert response.status_code == 502 and response.json()["error"].startswith("Upstream request failed (traceId: ")

    async def test_ask_without_an_llm_is_501(self, make_relayer, account):
        relayer = await make_relayer(env={"OPENAI_API_KEY": ""})
        response = await relayer.call(account, "POST", "/api/ask", {"question": "?"}, session=True)
        assert (response.status_code, response.json()) == (501, {"error": "ask needs an LLM: set OPENAI_API_KEY"})

    async def test_a_session_the_sidecar_refuses_is_400(self, relayer, account):
        response = await relayer.call(account, "POST", "/api/remember", {"text": "needs a hit to open", "namespace": "edge"})
        await wait_done(relayer, account, response.json()["job_id"])
        recall = await relayer.call(account, "POST", "/api/recall", {"query": "hit", "namespace": "edge"},
                                    headers={"x-seal-session": base64.b64encode(b'{"not": "a session"}').decode()})
        assert recall.status_code == 400 and recall.json()["error"].startswith("x-seal-session rejected")

    async def test_storage_quota_is_402_before_any_upload(self, make_relayer, account):
        relayer = await make_relayer(env={"RATE_LIMIT_STORAGE_BYTES": "10"})
        ciphertext = await relayer.services.sidecar.encrypt(b"eleven bytes", owner=account.owner_address,
                                                            package_id=relayer.info["memwal_package_id"])
        payload = {"encrypted_data": base64.b64encode(ciphertext).decode(), "vector": [0.5] * 1536}
        relayer.sidecar_paths.clear()
        response = await relayer.call(account, "POST", "/api/remember/manual", payload)
        assert response.status_code == 402 and response.json()["error"].startswith("Storage quota exceeded")
        assert relayer.operations() == []

    async def test_remember_checks_the_quota_before_its_202(self, make_relayer, account):
        # It used to answer 202 and fail the job later ("Quota Exceeded" only visible when polling).
        relayer = await make_relayer(env={"RATE_LIMIT_STORAGE_BYTES": "10"})
        relayer.sidecar_paths.clear()
        response = await relayer.call(account, "POST", "/api/remember", {"text": "more than ten bytes of text"})
        assert response.status_code == 402 and response.json()["error"].startswith("Storage quota exceeded")
        bulk = await relayer.call(account, "POST", "/api/remember/bulk", {"items": [{"text": "another long text"}]})
        assert bulk.status_code == 402
        assert relayer.operations() == []  # nothing encrypted, nothing queued

    async def test_a_bad_vector_is_refused_before_the_paid_upload(self, make_relayer, account):
        # /api/remember/manual used to upload the blob (the server wallet pays) and then fail on the vector.
        relayer = await make_relayer()
        ciphertext = await relayer.services.sidecar.encrypt(b"secret", owner=account.owner_address,
                                                            package_id=relayer.info["memwal_package_id"])
        relayer.sidecar_paths.clear()
        for vector in ([0.0] * 1536, [3e38] * 1536):
            response = await relayer.call(account, "POST", "/api/remember/manual",
                                          {"encrypted_data": base64.b64encode(ciphertext).decode(), "vector": vector})
            assert response.status_code == 400, response.text
        assert relayer.operations() == []


class TestClientMistakesThroughTheApp:
    async def test_body_type_and_field_errors(self, relayer, account):
        seed = bytes.fromhex(account.delegate_private_key_hex)

        async def send(body: bytes, content_type: str = "application/json"):
            headers = signed_headers(seed, "POST", "/api/recall", body, account_id=account.account_id)
            headers["content-type"] = content_type
            return await relayer.client.post("/api/recall", content=body, headers=headers)

        assert (await send(b"{")).status_code == 400
        assert (await send(body_of({"query": "x"}), "text/plain")).status_code == 415
        missing = await send(body_of({"namespace": "x"}))
        assert (missing.status_code, missing.json()) == (422, {"error": "missing field `query`"})
        too_big = await send(b" " * (2 * 1024 * 1024 + 1))
        assert too_big.status_code == 413 and too_big.json() == {"error": "Request body exceeds 2097152 bytes"}

    async def test_a_trickled_body_below_the_minimum_rate_is_408(self, make_relayer, account):
        # Every chunk arrives well within the grace period, but the body as a whole crawls: 10 bytes per 0.2 s
        # against a minimum of 1 KiB/s. Before, nothing but the client ever ended such a request.
        relayer = await make_relayer(env={"BODY_READ_TIMEOUT_SECS": "1", "MIN_BODY_BYTES_PER_SEC": "1024"})
        body = body_of({"text": "x" * 2000})
        headers = signed_headers(bytes.fromhex(account.delegate_private_key_hex), "POST", "/api/remember", body,
                                 account_id=account.account_id)

        async def trickle():
            for start in range(0, len(body), 10):
                yield body[start : start + 10]
                await asyncio.sleep(0.2)

        response = await relayer.client.post("/api/remember", content=trickle(), headers=headers)
        assert (response.status_code, response.headers["connection"]) == (408, "close")
        assert "bytes/s" in response.json()["error"]

    async def test_auth_failures(self, relayer, account):
        seed = bytes.fromhex(account.delegate_private_key_hex)
        body = body_of({})
        headers = signed_headers(seed, "POST", "/api/stats", body, account_id=account.account_id)
        bad = dict(headers, **{"x-signature": "00" * 64})
        response = await relayer.client.post("/api/stats", content=body, headers=bad)
        assert (response.status_code, response.content, response.headers.get("x-auth-error")) == (401, b"", None)
        legacy = {k: v for k, v in headers.items() if k != "x-nonce"}
        assert (await relayer.client.post("/api/stats", content=body, headers=legacy)).status_code == 426
        stale = signed_headers(seed, "POST", "/api/stats", body, account_id=account.account_id, timestamp=1)
        response = await relayer.client.post("/api/stats", content=body, headers=stale)
        assert (response.status_code, response.headers["x-auth-error"]) == (401, "ERR_TIMESTAMP_OUT_OF_BOUNDS")

    async def test_rate_limit_is_429_with_retry_after(self, make_relayer, account):
        relayer = await make_relayer(env={"RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": "1"})
        fresh = await create_account(relayer.info, label="limited")
        assert (await relayer.call(fresh, "POST", "/api/stats", {})).status_code == 200
        limited = await relayer.call(fresh, "POST", "/api/stats", {})
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "60")
        assert json.loads(limited.content) == {"error": "Rate limit exceeded", "layer": "delegate_key",
                                               "limit": "1 weighted-requests/min", "retry_after_seconds": 60}
