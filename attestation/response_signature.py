"""The signed-response format shared by the enclave (signs) and the attested client (verifies).

See enclave/response_signing.py and docs/tee.md for the exact message layout.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from attestation.errors import ResponseSignatureError

DOMAIN = b"memwal-enclave/response/v1"
SIGNATURE_HEADER = "x-enclave-signature"
TIMESTAMP_HEADER = "x-enclave-timestamp"
SIGNATURE_SIZE = 64
MAX_TIMESTAMP_DIGITS = 16
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_SKEW_MS = 5 * 60 * 1000


def request_hasher(method: str | bytes, path_and_query: str | bytes) -> Any:
    """A SHA-256 object fed with ``method ‖ " " ‖ path_and_query ‖ "\\n"``; feed it the body next."""
    method_bytes = method.encode("ascii") if isinstance(method, str) else method
    target = path_and_query.encode("ascii") if isinstance(path_and_query, str) else path_and_query
    return hashlib.sha256(method_bytes + b" " + target + b"\n")


def request_digest(method: str | bytes, path_and_query: str | bytes, body: bytes) -> bytes:
    """SHA-256(method ‖ " " ‖ path_and_query ‖ "\\n" ‖ body)."""
    hasher = request_hasher(method, path_and_query)
    hasher.update(body)
    digest: bytes = hasher.digest()
    return digest


def response_message(*, status: int, request_sha256: bytes, response_body: bytes, timestamp_ms: int) -> bytes:
    """The exact bytes that are signed (see the module docstring)."""
    if not 0 <= status <= 0xFFFF or not 0 <= timestamp_ms < 2**64 or len(request_sha256) != 32:
        raise ValueError("status, timestamp or request digest out of range")
    return (
        DOMAIN
        + status.to_bytes(2, "big")
        + request_sha256
        + hashlib.sha256(response_body).digest()
        + timestamp_ms.to_bytes(8, "big")
    )


def verify_response_signature(
    public_key: bytes,
    *,
    method: str,
    path_and_query: str | bytes,
    request_body: bytes,
    status: int,
    response_body: bytes,
    headers: MutableMapping[str, str] | Any,
    now_ms: int,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
) -> int:
    """Check a response's signature headers; return the signed timestamp, raise ResponseSignatureError."""
    signature_text = headers.get(SIGNATURE_HEADER)
    timestamp_text = headers.get(TIMESTAMP_HEADER)
    if signature_text is None or timestamp_text is None:
        raise ResponseSignatureError("response is not signed by the enclave")
    if not (0 < len(timestamp_text) <= MAX_TIMESTAMP_DIGITS and timestamp_text.isascii() and timestamp_text.isdigit()):
        raise ResponseSignatureError("malformed x-enclave-timestamp")
    if len(signature_text) != SIGNATURE_SIZE * 2:
        raise ResponseSignatureError("malformed x-enclave-signature")
    try:
        signature = bytes.fromhex(signature_text)
        key = Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError:
        raise ResponseSignatureError("malformed x-enclave-signature or identity key") from None
    timestamp_ms = int(timestamp_text)
    if abs(now_ms - timestamp_ms) > max_skew_ms:
        raise ResponseSignatureError(f"response signed at {timestamp_ms} ms, outside ±{max_skew_ms} ms of {now_ms}")
    message = response_message(
        status=status,
        request_sha256=request_digest(method, path_and_query, request_body),
        response_body=response_body,
        timestamp_ms=timestamp_ms,
    )
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise ResponseSignatureError("response signature does not verify with the attested identity key") from None
    return timestamp_ms


