"""One POST of a JSON body to a Sui node, with the limits and error mapping both backends share.

Transport failures, timeouts, 429 and 5xx become ``ChainUnavailable`` (worth retrying); any other
non-2xx status, an oversized or non-JSON body becomes ``ChainProtocolError``.

A pooled keep-alive connection the server (or a proxy on the way) closed while it sat idle fails the next
request with ``RemoteProtocolError`` before any answer; that request is sent once more, on a new connection.
Sending twice is safe for every call made here: reads are idempotent, and Sui executes the same signed
transaction bytes once (a second submission returns the same effects).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from chain.errors import ChainProtocolError, ChainUnavailable

MAX_RESPONSE_BYTES = 8 * 1024 * 1024  # a 50-object page with content is well under 1 MiB
DEFAULT_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class TransportLimits:
    max_response_bytes: int = MAX_RESPONSE_BYTES
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


DEFAULT_TRANSPORT_LIMITS = TransportLimits()


async def post_json(http: httpx.AsyncClient, url: str, body: object, limits: TransportLimits) -> object:
    """POST ``body`` as JSON and return the decoded JSON answer."""
    content = json.dumps(body, separators=(",", ":")).encode("utf-8")
    try:
        try:
            raw = await _post(http, url, content, limits)
        except httpx.RemoteProtocolError:  # a stale pooled connection: once more, on a fresh one
            raw = await _post(http, url, content, limits)
    except httpx.TimeoutException as exc:
        raise ChainUnavailable(f"Sui node timed out: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        raise ChainUnavailable(f"Sui node unreachable: {type(exc).__name__}") from exc
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ChainProtocolError("Sui node answered with a body that is not JSON") from exc


async def _post(http: httpx.AsyncClient, url: str, content: bytes, limits: TransportLimits) -> bytes:
    # identity: upstream sends it too, and it keeps the size cap meaningful (no decompression bombs)
    headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
    async with http.stream("POST", url, content=content, headers=headers, timeout=limits.timeout_seconds) as response:
        if response.status_code == 429 or response.status_code >= 500:
            raise ChainUnavailable(f"Sui node answered HTTP {response.status_code}")
        if not 200 <= response.status_code < 300:
            raise ChainProtocolError(f"Sui node answered HTTP {response.status_code}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_response_bytes:
            raise ChainProtocolError("Sui node response exceeds the size cap")
        chunks = bytearray()
        async for chunk in response.aiter_raw():
            chunks += chunk
            if len(chunks) > limits.max_response_bytes:
                raise ChainProtocolError("Sui node response exceeds the size cap")
    return bytes(chunks)
