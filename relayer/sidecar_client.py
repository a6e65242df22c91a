"""The relayer's client for the sidecar API (sidecar/protocol.py), usually over its Unix socket.

The relayer never holds key material; everything that needs a key is a call here. This is also the one place
sidecar failures become relayer errors (relayer/errors.py):

    transport failure, timeout, oversized or malformed reply      → SidecarUnavailable
    UpstreamUnavailable (Walrus, Sui, key servers)                 → UpstreamUnavailable
    TransferFailed, Internal, Unauthorized (a sidecar-side fault)  → SidecarFailed
    InvalidSession                                                 → SealSessionInvalid
    AccessDenied                                                   → SealAccessDenied
    BadInput                                                       → SidecarRejected
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import httpx

from memwal_common.secret import Secret
from relayer.errors import (
    RelayerError,
    SealAccessDenied,
    SealSessionInvalid,
    SidecarFailed,
    SidecarRejected,
    SidecarUnavailable,
    UpstreamUnavailable,
)
from sidecar.protocol import (
    HEALTH_PATH,
    MAX_OPEN_BATCH,
    EncryptRequest,
    ErrorKind,
    ErrorReply,
    HealthReply,
    OpenBlobsReply,
    OpenBlobsRequest,
    OpenedBlob,
    ProtocolError,
    QueryBlobsReply,
    QueryBlobsRequest,
    UploadReply,
    UploadRequest,
    parse_json_object,
)

ReplyT = TypeVar("ReplyT")


class SidecarApi(Protocol):
    """What the relayer needs from its sidecar; ``SidecarClient`` is the implementation."""

    async def health(self) -> HealthReply | None: ...

    async def encrypt(self, data: bytes, *, owner: str, package_id: str, request_id: str | None = None) -> bytes: ...

    async def upload(self, request: UploadRequest, *, request_id: str | None = None) -> UploadReply: ...

    async def open_blobs(
        self, blob_ids: Sequence[str], *, package_id: str, account_id: str, session: str, request_id: str | None = None
    ) -> dict[str, OpenedBlob]: ...

    async def query_blobs(self, request: QueryBlobsRequest, *, request_id: str | None = None) -> QueryBlobsReply: ...


@dataclass(frozen=True)
class SidecarLimits:
    request_timeout_seconds: float  # a whole call, including the sidecar's own upstream calls
    connect_timeout_seconds: float
    health_timeout_seconds: float
    max_reply_bytes: int


def _domain_error(reply: ErrorReply, path: str) -> RelayerError:
    detail = f"sidecar {path}: {reply.kind.value}: {reply.message}"
    if reply.kind is ErrorKind.INVALID_SESSION:
        return SealSessionInvalid(f"x-seal-session rejected: {reply.message}")
    if reply.kind is ErrorKind.ACCESS_DENIED:
        return SealAccessDenied("Seal key servers denied access to these memories")
    if reply.kind is ErrorKind.BAD_INPUT:
        return SidecarRejected(reply.message or reply.kind.value)
    if reply.kind is ErrorKind.UPSTREAM_UNAVAILABLE:
        return UpstreamUnavailable(detail)
    return SidecarFailed(detail, kind=reply.kind.value)


class SidecarClient:
    def __init__(
        self, transport: httpx.AsyncBaseTransport, token: Secret, limits: SidecarLimits, *,
        transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self._limits = limits
        self._token = token
        self._transport_factory = transport_factory
        self._http = self._client(transport)

    def _client(self, transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=transport,
            base_url="http://sidecar",
            timeout=httpx.Timeout(self._limits.request_timeout_seconds, connect=self._limits.connect_timeout_seconds),
            headers={"Authorization": f"Bearer {self._token.reveal()}"},
        )

    @classmethod
    def over_unix_socket(cls, socket_path: str, token: Secret, limits: SidecarLimits) -> SidecarClient:
        def transport() -> httpx.AsyncBaseTransport:
            return httpx.AsyncHTTPTransport(uds=socket_path, retries=0)

        return cls(transport(), token, limits, transport_factory=transport)

    async def reconnect(self) -> None:
        """Drop every pooled connection: after a sidecar restart they all lead to the dead process."""
        if self._transport_factory is None:
            return
        stale, self._http = self._http, self._client(self._transport_factory())
        await stale.aclose()

    async def close(self) -> None:
        await self._http.aclose()

    async def _read(self, response: httpx.Response, path: str) -> object:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._limits.max_reply_bytes:
                raise SidecarUnavailable(f"sidecar {path}: reply larger than {self._limits.max_reply_bytes} bytes")
            chunks.append(chunk)
        try:
            return parse_json_object(b"".join(chunks))
        except ProtocolError:
            raise SidecarUnavailable(f"sidecar {path}: non-JSON answer ({response.status_code})") from None

    async def _call(self, path: str, payload: dict[str, object], parse: Callable[[object], ReplyT], request_id: str | None) -> ReplyT:
        headers = {"x-request-id": request_id} if request_id else {}
        try:
            async with self._http.stream("POST", path, json=payload, headers=headers) as response:
                body = await self._read(response, path)
        except httpx.HTTPError as exc:
            raise SidecarUnavailable(f"sidecar {path}: {type(exc).__name__}") from None
        try:
            if response.status_code != 200:
                raise _domain_error(ErrorReply.from_json(body), path)
            return parse(body)
        except ProtocolError as exc:
            raise SidecarUnavailable(f"sidecar {path}: reply breaks the protocol ({response.status_code}): {exc}") from None

    async def health(self) -> HealthReply | None:
        """The sidecar's health, or None when it does not answer healthy within the health timeout."""
        try:
            response = await self._http.get(HEALTH_PATH, timeout=self._limits.health_timeout_seconds)
            if response.status_code != 200 or len(response.content) > self._limits.max_reply_bytes:
                return None
            return HealthReply.from_json(parse_json_object(response.content))
        except (httpx.HTTPError, ProtocolError):
            return None

    async def encrypt(self, data: bytes, *, owner: str, package_id: str, request_id: str | None = None) -> bytes:
        request = EncryptRequest(data, owner, package_id)
        return (await self._call(request.PATH, request.to_json(), request.Reply.from_json, request_id)).ciphertext

    async def upload(self, request: UploadRequest, *, request_id: str | None = None) -> UploadReply:
        return await self._call(request.PATH, request.to_json(), request.Reply.from_json, request_id)

    async def open_blobs(
        self, blob_ids: Sequence[str], *, package_id: str, account_id: str, session: str, request_id: str | None = None
    ) -> dict[str, OpenedBlob]:
        """Each distinct id's outcome; at most MAX_OPEN_BATCH ids per call, so a recall is one call."""
        opened: dict[str, OpenedBlob] = {}
        unique = list(dict.fromkeys(blob_ids))
        for start in range(0, len(unique), MAX_OPEN_BATCH):
            request = OpenBlobsRequest(tuple(unique[start : start + MAX_OPEN_BATCH]), package_id, account_id, session)
            reply: OpenBlobsReply = await self._call(request.PATH, request.to_json(), request.Reply.from_json, request_id)
            if [blob.blob_id for blob in reply.blobs] != list(request.blob_ids):
                raise SidecarUnavailable(f"sidecar {request.PATH}: reply does not match the requested blobs")
            opened.update((blob.blob_id, blob) for blob in reply.blobs)
        return opened

    async def query_blobs(self, request: QueryBlobsRequest, *, request_id: str | None = None) -> QueryBlobsReply:
        return await self._call(request.PATH, request.to_json(), request.Reply.from_json, request_id)
