import hashlib

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from attestation.errors import ResponseSignatureError
from attestation.response_signature import DOMAIN, request_digest, response_message, verify_response_signature
from enclave.response_signing import ResponseSigningMiddleware

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
NOW_MS = 1_777_000_000_000


async def echo(request: Request) -> Response:
    return JSONResponse({"got": (await request.body()).decode()}, status_code=201)


async def big(request: Request) -> Response:
    return Response(b"x" * 2000)


def signed_app(**options) -> ResponseSigningMiddleware:
    app = Starlette(routes=[Route("/api/echo", echo, methods=["POST"]), Route("/api/big", big)])
    return ResponseSigningMiddleware(app, signing_key=KEY, clock_ms=lambda: NOW_MS, **options)


async def call(app, method, url, content=b""):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://e.test") as http:
        return await http.request(method, url, content=content)


def verify(response: httpx.Response, *, request_body=b"hello", now_ms=NOW_MS, **overrides):
    arguments = dict(
        method=response.request.method,
        path_and_query=response.request.url.raw_path,
        request_body=request_body,
        status=response.status_code,
        response_body=response.content,
        headers=response.headers,
        now_ms=now_ms,
    )
    arguments.update(overrides)
    return verify_response_signature(PUBLIC, **arguments)


class TestMessage:
    def test_exact_layout(self):
        request_sha = request_digest("POST", "/api/echo?a=1", b"body")
        assert request_sha == hashlib.sha256(b"POST /api/echo?a=1\nbody").digest()
        message = response_message(status=201, request_sha256=request_sha, response_body=b"{}", timestamp_ms=5)
        assert message == DOMAIN + b"\x00\xc9" + request_sha + hashlib.sha256(b"{}").digest() + (5).to_bytes(8, "big")
        assert len(message) == 26 + 2 + 32 + 32 + 8


class TestResponseSigning:
    async def test_signature_verifies(self):
        response = await call(signed_app(), "POST", "/api/echo?a=1&b=%20", b"hello")
        assert response.status_code == 201
        assert verify(response) == NOW_MS
        assert len(response.headers["x-enclave-signature"]) == 128

    @pytest.mark.parametrize(
        "override",
        [
            {"request_body": b"hellO"},
            {"path_and_query": b"/api/echo?a=2&b=%20"},
            {"method": "PUT"},
            {"status": 200},
            {"response_body": b'{"got":"tampered"}'},
        ],
    )
    async def test_tampering_is_detected(self, override):
        response = await call(signed_app(), "POST", "/api/echo?a=1&b=%20", b"hello")
        with pytest.raises(ResponseSignatureError, match="does not verify"):
            verify(response, **override)

    async def test_stale_signature_is_refused(self):
        response = await call(signed_app(), "POST", "/api/echo", b"hello")
        with pytest.raises(ResponseSignatureError, match="outside"):
            verify(response, now_ms=NOW_MS + 10 * 60 * 1000)

    async def test_other_key_is_refused(self):
        response = await call(signed_app(), "POST", "/api/echo", b"hello")
        other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        with pytest.raises(ResponseSignatureError):
            verify_response_signature(
                other, method="POST", path_and_query=b"/api/echo", request_body=b"hello", status=201,
                response_body=response.content, headers=response.headers, now_ms=NOW_MS,
            )  # fmt: skip

    @pytest.mark.parametrize(
        "headers",
        [{}, {"x-enclave-timestamp": "1"}, {"x-enclave-timestamp": "-1", "x-enclave-signature": "00" * 64},
         {"x-enclave-timestamp": "1", "x-enclave-signature": "zz" * 64},
         {"x-enclave-timestamp": "1", "x-enclave-signature": "00" * 63}],
    )  # fmt: skip
    def test_missing_or_malformed_headers(self, headers):
        with pytest.raises(ResponseSignatureError):
            verify_response_signature(
                PUBLIC, method="GET", path_and_query="/", request_body=b"", status=200, response_body=b"",
                headers=headers, now_ms=1,
            )  # fmt: skip

    async def test_oversized_request_is_a_signed_413(self):
        response = await call(signed_app(max_request_bytes=10), "POST", "/api/echo", b"x" * 11)
        assert response.status_code == 413
        verify(response, request_body=b"x" * 11)

    async def test_oversized_response_is_a_signed_502(self):
        response = await call(signed_app(max_response_bytes=1000), "GET", "/api/big")
        assert response.status_code == 502
        verify(response, request_body=b"")

    async def test_paths_can_be_exempted(self):
        response = await call(signed_app(should_sign=lambda path: False), "POST", "/api/echo", b"hello")
        assert "x-enclave-signature" not in response.headers
