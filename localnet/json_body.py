"""Reading a bounded JSON request body, shared by the localnet's Sui JSON-RPC, GraphQL and admin routes."""

from __future__ import annotations

import json

from starlette.requests import Request

MAX_BODY_BYTES = 1024 * 1024  # a 128 KiB transaction in base64 plus signatures fits easily


async def read_json(request: Request) -> object:
    """The parsed body; ``ValueError`` if it is larger than ``MAX_BODY_BYTES`` or not JSON."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ValueError("request body exceeds the size cap")
    return json.loads(bytes(body))
