"""A minimal independent request signer for negative tests (the official SDK is used for the happy path)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid

import nacl.signing

from sealcrypto import SessionKey


def signed_headers(seed: bytes, method: str, path: str, body: bytes, *, account_id: str,
                   timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    key = nacl.signing.SigningKey(seed)
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or str(uuid.uuid4())
    message = f"{ts}.{method}.{path}.{hashlib.sha256(body).hexdigest()}.{nonce}.{account_id}"
    return {
        "content-type": "application/json",
        "x-public-key": bytes(key.verify_key).hex(),
        "x-signature": key.sign(message.encode()).signature.hex(),
        "x-timestamp": ts,
        "x-nonce": nonce,
        "x-account-id": account_id,
    }


def body_of(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def seal_session_header(seed: bytes, package_id: str, *, ttl_min: int = 10) -> str:
    """The x-seal-session value the official SDKs send: base64 of the exported session key JSON."""
    session = SessionKey.create(user_seed=seed, package_id=package_id, ttl_min=ttl_min,
                                now_ms=int(time.time() * 1000), session_seed=os.urandom(32))
    return base64.b64encode(json.dumps(session.to_exported()).encode()).decode()
