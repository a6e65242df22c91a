"""Typed client for the sidecar's HTTP API over its Unix socket (docs/architecture.md).

The relayer never holds key material; everything that needs a key is a call here. Transport failures
and sidecar 5xx become ``SidecarUnavailable`` (→ 503); the sidecar's typed errors come back as
``SidecarRejected`` with the sidecar's ``kind`` so callers can tell a bad client credential from a
corrupted blob.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx

from memwal_common.secret import Secret

MAX_DECRYPT_BATCH = 25
MAX_READ_BATCH = 25


class SidecarError(Exception):
    """Base class for sidecar call failures."""


class SidecarUnavailable(SidecarError):
    """The sidecar (or an upstream it depends on) is down or timed out; worth retrying."""


class SidecarRejected(SidecarError):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.status = status
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Upload:
    blob_id: str
    object_id: str
    transfer_status: str


@dataclass(frozen=True)
class DecryptFailure:
    error: str
    permanent: bool


@dataclass(frozen=True)
class BlobRead:
    blob_id: str
    data: bytes | None
    status: str  # ok | not_found | error


@dataclass(frozen=True)
class ChainBlob:
    blob_id: str
    object_id: str
    namespace: str
    package_id: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class SidecarClient:
    def __init__(self, socket_path: str, token: Secret, *, timeout_seconds: float = 120.0, request_id: str | None = None):
        transport = httpx.AsyncHTTPTransport(uds=socket_path, retries=0)
        self._http = httpx.AsyncClient(
            transport=transport,
            base_url="http://sidecar",
            timeout=httpx.Timeout(timeout_seconds, connect=5.0),
            headers={"Authorization": f"Bearer {token.reveal()}"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, payload: dict, *, request_id: str | None = None) -> dict:
        headers = {"x-request-id": request_id} if request_id else {}
        try:
            response = await self._http.post(path, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise SidecarUnavailable(f"sidecar {path}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            raise SidecarUnavailable(f"sidecar {path}: non-JSON answer ({response.status_code})") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise SidecarUnavailable(f"sidecar {path}: {body.get('kind', 'error')}: {body.get('error', '')}")
        if response.status_code >= 400:
            raise SidecarRejected(response.status_code, str(body.get("kind", "error")), str(body.get("error", "")))
        return body

    async def health(self) -> dict:
        try:
            response = await self._http.get("/health", timeout=2.0)
            return response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return {}

    async def encrypt(self, data: bytes, owner: str, package_id: str, *, request_id: str | None = None) -> bytes:
        body = await self._post("/seal/encrypt", {"data": _b64(data), "owner": owner, "packageId": package_id}, request_id=request_id)
        return base64.b64decode(body["encryptedData"])

    async def decrypt_batch(
        self, items: list[bytes], *, package_id: str, account_id: str, session: str, request_id: str | None = None
    ) -> tuple[dict[int, bytes], dict[int, DecryptFailure]]:
        results: dict[int, bytes] = {}
        failures: dict[int, DecryptFailure] = {}
        for start in range(0, len(items), MAX_DECRYPT_BATCH):
            chunk = items[start : start + MAX_DECRYPT_BATCH]
            body = await self._post(
                "/seal/decrypt-batch",
                {"items": [_b64(item) for item in chunk], "packageId": package_id, "accountId": account_id, "session": session},
                request_id=request_id,
            )
            for entry in body.get("results", []):
                results[start + int(entry["index"])] = base64.b64decode(entry["decryptedData"])
            for entry in body.get("errors", []):
                failures[start + int(entry["index"])] = DecryptFailure(str(entry.get("error", "")), bool(entry.get("permanent")))
        return results, failures

    async def upload(
        self, data: bytes, *, owner: str, namespace: str, package_id: str, epochs: int, job_id: str,
        agent_id: str | None = None, request_id: str | None = None,
    ) -> Upload:
        payload = {
            "data": _b64(data), "owner": owner, "namespace": namespace, "packageId": package_id,
            "epochs": epochs, "jobId": job_id, "agentId": agent_id,
        }
        body = await self._post("/walrus/upload", payload, request_id=request_id)
        return Upload(body["blobId"], body["objectId"], body.get("transferStatus", "ok"))

    async def read(self, blob_ids: list[str], *, request_id: str | None = None) -> dict[str, BlobRead]:
        reads: dict[str, BlobRead] = {}
        unique = list(dict.fromkeys(blob_ids))
        for start in range(0, len(unique), MAX_READ_BATCH):
            body = await self._post("/walrus/read", {"blobIds": unique[start : start + MAX_READ_BATCH]}, request_id=request_id)
            for entry in body.get("blobs", []):
                data = base64.b64decode(entry["data"]) if entry.get("data") is not None else None
                reads[entry["blobId"]] = BlobRead(entry["blobId"], data, entry.get("status", "error"))
        return reads

    async def query_blobs(self, *, owner: str, namespace: str, package_id: str, limit: int, request_id: str | None = None) -> tuple[list[ChainBlob], int, bool]:
        body = await self._post(
            "/walrus/query-blobs", {"owner": owner, "namespace": namespace, "packageId": package_id, "limit": limit}, request_id=request_id
        )
        blobs = [ChainBlob(b["blobId"], b["objectId"], b.get("namespace", "default"), b.get("packageId", "")) for b in body.get("blobs", [])]
        return blobs, int(body.get("total", len(blobs))), bool(body.get("capped", False))
