"""The sidecar's HTTP API (sidecar/protocol.py is the contract), served only on a Unix socket.

Every route but ``GET /health`` needs ``Authorization: Bearer <token>`` (constant-time compare). Bodies are
capped at ``max_request_bytes`` and parsed into the protocol's frozen request types; every failure is an
``ErrorReply`` with the status of its kind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chain.reader import ChainReader
from memwal_common.secret import Secret
from sidecar.blob_opening import BlobOpener
from sidecar.blob_query import query_blobs
from sidecar.errors import BadInput, SidecarError
from sidecar.protocol import (
    HEALTH_PATH,
    EncryptReply,
    EncryptRequest,
    ErrorKind,
    ErrorReply,
    HealthReply,
    OpenBlobsReply,
    OpenBlobsRequest,
    ProtocolError,
    QueryBlobsReply,
    QueryBlobsRequest,
    UploadReply,
    UploadRequest,
    parse_json_object,
    status_of,
)
from sidecar.seal_service import SealService
from sidecar.uploads import UploadService

logger = logging.getLogger("memwal.sidecar")


@dataclass(frozen=True)
class SidecarServices:
    token: Secret
    seal: SealService
    opener: BlobOpener
    uploads: UploadService
    chain: ChainReader
    walrus_package_id: str
    max_request_bytes: int
    started: float  # time.monotonic() at start


class _Message(Protocol):
    def to_json(self) -> dict[str, object]: ...


def _error(reply: ErrorReply) -> JSONResponse:
    return JSONResponse(reply.to_json(), status_code=status_of(reply.kind))


async def _read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadInput("request too large")
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(services: SidecarServices) -> Starlette:
    def operation(parse: Callable[[object], Any], handle: Callable[[Any], Awaitable[_Message]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not services.token.matches(token):
                return _error(ErrorReply(ErrorKind.UNAUTHORIZED, "Unauthorized"))
            try:
                try:
                    body = parse(parse_json_object(await _read_body(request, services.max_request_bytes)))
                except ProtocolError as exc:
                    raise BadInput(str(exc)) from None
                return JSONResponse((await handle(body)).to_json())
            except SidecarError as error:
                if error.status >= 500:
                    logger.warning("%s failed: %s %s", request.url.path, error.kind.value, error.message)
                return _error(error.reply())
            except Exception:
                logger.exception("%s failed", request.url.path)
                return _error(ErrorReply(ErrorKind.INTERNAL, "internal error"))

        return endpoint

    async def health(request: Request) -> Response:
        uptime_ms = int((time.monotonic() - services.started) * 1000)
        return JSONResponse(HealthReply(uptime_ms, services.uploads.active).to_json())

    async def encrypt(request: EncryptRequest) -> EncryptReply:
        services.seal.check_package(request.package_id)
        return EncryptReply(await services.seal.encrypt(request.data, request.owner))

    async def upload(request: UploadRequest) -> UploadReply:
        services.seal.check_package(request.package_id)
        result = await services.uploads.upload(
            request.data,
            owner=request.owner,
            namespace=request.namespace,
            package_id=request.package_id,
            epochs=request.epochs,
            job_id=request.job_id,
            agent_id=request.agent_id,
            extra_tags=request.session.pairs() if request.session is not None else (),
        )
        return UploadReply(result.blob_id, result.object_id, result.transfer_status)

    async def open_blobs(request: OpenBlobsRequest) -> OpenBlobsReply:
        return await services.opener.open(request)

    async def query(request: QueryBlobsRequest) -> QueryBlobsReply:
        services.seal.check_package(request.package_id)
        blobs, capped = await query_blobs(
            services.chain,
            owner=request.owner,
            namespace=request.namespace,
            package_id=request.package_id,
            walrus_package_id=services.walrus_package_id,
        )
        return QueryBlobsReply(tuple(blobs), capped)

    return Starlette(
        routes=[
            Route(HEALTH_PATH, health, methods=["GET"]),
            Route(EncryptRequest.PATH, operation(EncryptRequest.from_json, encrypt), methods=["POST"]),
            Route(UploadRequest.PATH, operation(UploadRequest.from_json, upload), methods=["POST"]),
            Route(OpenBlobsRequest.PATH, operation(OpenBlobsRequest.from_json, open_blobs), methods=["POST"]),
            Route(QueryBlobsRequest.PATH, operation(QueryBlobsRequest.from_json, query), methods=["POST"]),
        ]
    )
