"""The sidecar's HTTP API (docs/architecture.md), served only on a Unix socket.

Every route but ``GET /health`` needs ``Authorization: Bearer <token>`` (constant-time compare).
Bodies are capped; byte fields are base64; errors are ``{"error", "kind"}`` with the status of the
``SidecarError`` subclass.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from memwal_common.secret import Secret
from sidecar.blob_query import query_blobs
from sidecar.errors import BadInput, SidecarError
from sidecar.seal_service import MAX_BATCH, SealService
from sidecar.uploads import UploadService
from sidecar.walrus import WalrusClient

logger = logging.getLogger("memwal.sidecar")

MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_READ_IDS = 25


@dataclass
class SidecarServices:
    token: Secret
    seal: SealService
    walrus: WalrusClient
    uploads: UploadService
    chain: Any
    walrus_package_id: str
    started: float


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise BadInput(f"{name} must be base64")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{name} must be base64") from None


def _text(body: dict, name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise BadInput(f"{name} must be a non-empty string")
    return value


def build_app(services: SidecarServices) -> Starlette:
    def authorized(handler: Callable[[dict], Awaitable[dict]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not services.token.matches(token):
                return JSONResponse({"error": "Unauthorized", "kind": "Unauthorized"}, status_code=401)
            try:
                raw = await request.body()
                if len(raw) > MAX_REQUEST_BYTES:
                    raise BadInput("request too large")
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise BadInput("body must be JSON") from None
                if not isinstance(body, dict):
                    raise BadInput("body must be a JSON object")
                return JSONResponse(await handler(body))
            except SidecarError as error:
                if error.status >= 500:
                    logger.warning("%s failed: %s %s", request.url.path, error.kind, error.message)
                return JSONResponse({"error": error.message, "kind": error.kind}, status_code=error.status)
            except Exception:
                logger.exception("%s failed", request.url.path)
                return JSONResponse({"error": "internal error", "kind": "Internal"}, status_code=500)

        return endpoint

    async def health(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "uptimeMs": int((time.monotonic() - services.started) * 1000),
                "activeWalrusUploads": services.uploads.active,
            }
        )

    async def seal_encrypt(body: dict) -> dict:
        services.seal.check_package(_text(body, "packageId"))
        data = _decode(body.get("data"), "data")
        encrypted = await services.seal.encrypt(data, _text(body, "owner"))
        return {"encryptedData": _b64(encrypted)}

    async def seal_decrypt_batch(body: dict) -> dict:
        services.seal.check_package(_text(body, "packageId"))
        items = body.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
            raise BadInput(f"items must be a list of 1..{MAX_BATCH} base64 strings")
        decoded = [_decode(item, "items[]") for item in items]
        results, failures = await services.seal.decrypt_batch(
            decoded, account_id=_text(body, "accountId"), session_header=_text(body, "session", required=False)
        )
        return {
            "results": [{"index": index, "decryptedData": _b64(data)} for index, data in sorted(results.items())],
            "errors": [{"index": f.index, "error": f.error, "permanent": f.permanent} for f in failures],
        }

    async def walrus_upload(body: dict) -> dict:
        services.seal.check_package(_text(body, "packageId"))
        epochs = body.get("epochs", 5)
        if not isinstance(epochs, int) or isinstance(epochs, bool) or not 1 <= epochs <= 5:
            raise BadInput("epochs must be an integer in 1..5")
        result = await services.uploads.upload(
            _decode(body.get("data"), "data"),
            owner=_text(body, "owner"),
            namespace=_text(body, "namespace"),
            package_id=_text(body, "packageId"),
            epochs=epochs,
            job_id=_text(body, "jobId", required=False) or None,
            agent_id=_text(body, "agentId", required=False) or None,
        )
        return {"blobId": result.blob_id, "objectId": result.object_id, "transferStatus": result.transfer_status}

    async def walrus_read(body: dict) -> dict:
        blob_ids = body.get("blobIds")
        if not isinstance(blob_ids, list) or not 1 <= len(blob_ids) <= MAX_READ_IDS:
            raise BadInput(f"blobIds must be a list of 1..{MAX_READ_IDS} ids")
        if not all(isinstance(b, str) and 0 < len(b) <= 128 and b.replace("-", "").replace("_", "").isalnum() for b in blob_ids):
            raise BadInput("blobIds must be Walrus blob ids")
        fetched = await services.walrus.read_many(blob_ids)
        return {
            "blobs": [
                {"blobId": blob_id, "status": fetch.status, "data": _b64(fetch.data) if fetch.data is not None else None}
                for blob_id, fetch in fetched.items()
            ]
        }

    async def walrus_query_blobs(body: dict) -> dict:
        package_id = _text(body, "packageId")
        services.seal.check_package(package_id)
        blobs, capped = await query_blobs(
            services.chain,
            owner=_text(body, "owner"),
            namespace=_text(body, "namespace"),
            package_id=package_id,
            walrus_package_id=services.walrus_package_id,
        )
        return {
            "blobs": [
                {"blobId": b.blob_id, "objectId": b.object_id, "namespace": b.namespace, "packageId": b.package_id} for b in blobs
            ],
            "total": len(blobs),
            "capped": capped,
        }

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/seal/encrypt", authorized(seal_encrypt), methods=["POST"]),
            Route("/seal/decrypt-batch", authorized(seal_decrypt_batch), methods=["POST"]),
            Route("/walrus/upload", authorized(walrus_upload), methods=["POST"]),
            Route("/walrus/read", authorized(walrus_read), methods=["POST"]),
            Route("/walrus/query-blobs", authorized(walrus_query_blobs), methods=["POST"]),
        ]
    )
