"""HTTP pieces the localnet Seal key server and committee aggregator share, as Seal's ``server.rs`` and
``aggregator/server.rs`` behave: ``{error, message}`` bodies, version headers, the 180 KiB body cap and
the SDK-version gate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

KEY_SERVER_VERSION = "0.6.10"
KEY_SERVER_GIT_VERSION = "memwal-localnet"
MAX_BODY_BYTES = 180 * 1024
RESPONSE_HEADERS = {"X-KeyServer-Version": KEY_SERVER_VERSION, "X-KeyServer-GitVersion": KEY_SERVER_GIT_VERSION}
# A key server's defaults; an unknown or absent SDK type is not gated there (an aggregator refuses it).
KEY_SERVER_MINIMUM_SDK_VERSIONS = {"typescript": (0, 4, 5), "rust": (0, 0, 0), "python": (0, 0, 0), "aggregator": (0, 6, 2)}
AGGREGATOR_MINIMUM_SDK_VERSIONS = {"typescript": (0, 10, 0), "rust": (0, 0, 0), "python": (0, 0, 0)}


class Refusal(Exception):
    """A request answered with ``{error, message}`` and ``status``."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


def json_response(status: int, body: object) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=RESPONSE_HEADERS)


def error_response(refusal: Refusal) -> JSONResponse:
    return json_response(refusal.status, {"error": refusal.kind, "message": refusal.message})


def parse_semver(text: str) -> tuple[int, int, int]:
    parts = text.split("-", 1)[0].split(".")
    if len(parts) != 3 or not all(part.isdigit() and len(part) <= 9 for part in parts):
        raise Refusal(400, "InvalidSDKVersion", "Client-Sdk-Version must be x.y.z")
    return int(parts[0]), int(parts[1]), int(parts[2])


def check_key_server_sdk_headers(request: Request) -> None:
    version_text = request.headers.get("client-sdk-version")
    if version_text is None:
        raise Refusal(400, "MissingRequiredHeader", "Client-Sdk-Version is required")
    version = parse_semver(version_text)
    minimum = KEY_SERVER_MINIMUM_SDK_VERSIONS.get(request.headers.get("client-sdk-type", "").lower())
    if minimum is not None and version < minimum:
        raise Refusal(426, "DeprecatedSDKVersion", "SDK version is too old")


def check_aggregator_sdk_headers(request: Request) -> str:
    """The aggregator requires a known client SDK type (``InvalidSDKType`` otherwise, a permanent 400)."""
    sdk_type = request.headers.get("client-sdk-type")
    if sdk_type is None or sdk_type.lower() not in AGGREGATOR_MINIMUM_SDK_VERSIONS:
        raise Refusal(400, "InvalidSDKType", "Client-Sdk-Type must name a client SDK")
    version_text = request.headers.get("client-sdk-version")
    if version_text is None:
        raise Refusal(400, "MissingRequiredHeader", "Client-Sdk-Version is required")
    if parse_semver(version_text) < AGGREGATOR_MINIMUM_SDK_VERSIONS[sdk_type.lower()]:
        raise Refusal(426, "DeprecatedSDKVersion", "SDK version is too old")
    return sdk_type.lower()


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise Refusal(413, "PayloadTooLarge", "request body exceeds 180 KiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Refusal(413, "PayloadTooLarge", "request body exceeds 180 KiB")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(raw: bytes) -> Mapping[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise Refusal(400, "InvalidParameter", "body is not JSON") from None
    if not isinstance(body, dict):
        raise Refusal(400, "InvalidParameter", "body must be a JSON object")
    return body
