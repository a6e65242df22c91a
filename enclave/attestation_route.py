"""``GET /attestation?nonce=<hex>``: a fresh, nonce-bound attestation document.

* ``nonce``: required, exactly once, lowercase or uppercase hex of 1..64 bytes → 400 otherwise.
* Response: ``application/cbor`` (the raw COSE_Sign1 bytes) by default; ``{"attestation": "<base64>"}``
  when the client sends ``Accept: application/json``. ``Cache-Control: no-store``.
* The document carries ``public_key`` = Ed25519 identity key and ``user_data`` = the v1 block
  (user_data.py). Both are fixed per boot; only the nonce changes.
* Asking the NSM for a document is expensive (the real NSM signs with P-384; the simulator too),
  so requests pass a global token bucket (429 with ``retry-after``) and one NSM call runs at a time,
  off the event loop.
* If the attester fails: 503 with a generic message; the detail goes to the log only.

``on_issued(document)`` lets provisioning remember which documents this boot handed out.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from attestation.nsm import Attester

logger = logging.getLogger("memwal.enclave.attestation")

MIN_NONCE_BYTES = 1
MAX_NONCE_BYTES = 64
DEFAULT_RATE_PER_SECOND = 5.0
DEFAULT_BURST = 10
CBOR_MEDIA_TYPE = "application/cbor"


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``take()`` returns 0 or the seconds to wait."""

    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._updated = clock()

    def take(self) -> float:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


def parse_nonce(values: list[str]) -> bytes | None:
    """The nonce from the query values of ``nonce``, or None if missing, repeated or malformed."""
    if len(values) != 1:
        return None
    text = values[0]
    if not MIN_NONCE_BYTES * 2 <= len(text) <= MAX_NONCE_BYTES * 2 or len(text) % 2:
        return None
    try:
        return bytes.fromhex(text) if text.isascii() and text.isalnum() else None
    except ValueError:
        return None


def attestation_endpoint(
    attester: Attester,
    *,
    user_data: bytes,
    public_key: bytes,
    limiter: TokenBucket | None = None,
    on_issued: Callable[[bytes], None] = lambda document: None,
) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for ``GET /attestation``."""
    limiter = limiter or TokenBucket(rate=DEFAULT_RATE_PER_SECOND, burst=DEFAULT_BURST)
    nsm_lock = asyncio.Lock()

    async def attestation(request: Request) -> Response:
        nonce = parse_nonce(request.query_params.getlist("nonce"))
        if nonce is None:
            return JSONResponse(
                {"error": f"nonce must be given once, as hex of {MIN_NONCE_BYTES}..{MAX_NONCE_BYTES} bytes"},
                status_code=400,
            )
        wait = limiter.take()
        if wait:
            return JSONResponse(
                {"error": "too many attestation requests"},
                status_code=429,
                headers={"retry-after": str(max(1, math.ceil(wait)))},
            )
        try:
            async with nsm_lock:
                document = await asyncio.to_thread(
                    attester.attestation, user_data=user_data, nonce=nonce, public_key=public_key
                )
        except Exception:
            logger.exception("the attester failed to produce a document")
            return JSONResponse({"error": "attestation unavailable"}, status_code=503)
        on_issued(document)
        headers = {"cache-control": "no-store"}
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"attestation": base64.b64encode(document).decode("ascii")}, headers=headers)
        return Response(document, media_type=CBOR_MEDIA_TYPE, headers=headers)

    return attestation
