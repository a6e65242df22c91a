"""Signed responses: ASGI middleware (enclave side) and the verifier (client side).

Every response that passes the middleware carries::

    x-enclave-timestamp: <decimal milliseconds since the Unix epoch>
    x-enclave-signature: <hex of the 64-byte Ed25519 signature>

over this exact message (all integers unsigned big-endian)::

    b"memwal-enclave/response/v1"                 26 bytes, domain separation
    ‖ status                                      2 bytes  (u16)
    ‖ SHA-256(method ‖ " " ‖ path_and_query ‖ "\\n" ‖ request body)   32 bytes
    ‖ SHA-256(response body)                      32 bytes
    ‖ timestamp_ms                                8 bytes  (u64)

``method`` is the ASCII request method as sent; ``path_and_query`` is the request target as sent on the
wire (percent-encoded path, then ``?`` and the raw query string when the query is non-empty). A space
and a newline cannot occur in a method or a request target, so the request encoding is unambiguous.

The request body is read fully and replayed to the app (above ``max_request_bytes`` it is only hashed,
not kept, and the answer is a signed 413); the
response body is buffered (at most ``max_response_bytes``, else a signed 502): relayer responses are
small JSON documents. The signing key is the Ed25519 identity key whose public half is the
attestation document's ``public_key``. This module depends on nothing else in ``enclave`` so the
attested client can verify with the same definition.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from attestation.response_signature import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_hasher,
    response_message,
)

_JSON_HEADERS = [(b"content-type", b"application/json")]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


def path_and_query_of(scope: Scope) -> bytes:
    """The request target of an ASGI scope, as the client sent it."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    query: bytes = scope.get("query_string", b"")
    return raw_path + b"?" + query if query else raw_path


class ResponseSigningMiddleware:
    """Signs every HTTP response of ``app`` whose path ``should_sign(path)`` accepts."""

    def __init__(
        self,
        app: Asgi,
        *,
        signing_key: Ed25519PrivateKey,
        clock_ms: Callable[[], int],
        should_sign: Callable[[str], bool] = lambda path: True,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.app = app
        self._key = signing_key
        self._clock_ms = clock_ms
        self._should_sign = should_sign
        self._max_request_bytes = max_request_bytes
        self._max_response_bytes = max_response_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._should_sign(scope["path"]):
            await self.app(scope, receive, send)
            return
        hasher = request_hasher(scope["method"], path_and_query_of(scope))
        body, too_large = await self._read_request(receive, hasher)
        digest = hasher.digest()
        if too_large:
            await self._send_signed(send, digest, 413, _JSON_HEADERS, _json_error("request body too large"))
            return
        start: Message | None = None
        parts: list[bytes] = []
        size = 0
        overflow = False
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def capture(message: Message) -> None:
            nonlocal start, size, overflow
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self._max_response_bytes:
                    overflow = True
                elif not overflow:
                    parts.append(chunk)

        await self.app(scope, replay, capture)
        if start is None:
            raise RuntimeError("the application returned without starting a response")
        if overflow:
            await self._send_signed(send, digest, 502, _JSON_HEADERS, _json_error("response too large to sign"))
            return
        headers = [(name, value) for name, value in start.get("headers", []) if name.lower() != b"content-length"]
        await self._send_signed(send, digest, start["status"], headers, b"".join(parts))

    async def _read_request(self, receive: Receive, hasher: Any) -> tuple[bytes, bool]:
        """Buffer the body up to the cap; past it keep only hashing, so a 413 is still verifiable."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(parts), size > self._max_request_bytes
            chunk = message.get("body", b"")
            hasher.update(chunk)
            size += len(chunk)
            if size > self._max_request_bytes:
                parts.clear()
            else:
                parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), size > self._max_request_bytes

    async def _send_signed(
        self, send: Send, digest: bytes, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        timestamp_ms = self._clock_ms()
        signature = self._key.sign(
            response_message(status=status, request_sha256=digest, response_body=body, timestamp_ms=timestamp_ms)
        )
        headers = [
            *headers,
            (b"content-length", str(len(body)).encode("ascii")),
            (TIMESTAMP_HEADER.encode("ascii"), str(timestamp_ms).encode("ascii")),
            (SIGNATURE_HEADER.encode("ascii"), signature.hex().encode("ascii")),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _json_error(message: str) -> bytes:
    return json.dumps({"error": message}, separators=(",", ":")).encode("utf-8")
