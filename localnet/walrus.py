"""Localnet stand-ins for a Walrus publisher and Walrus aggregators (HTTP wire format of Walrus v1).

Stand-in: no erasure coding, no storage nodes. Bytes live in a content-addressed directory (:class:`BlobStore`)
that survives a restart; all aggregators read the same store.

Blob ids: a real Walrus id is BLAKE2b-256 over (RS2, size, Merkle root of the RedStuff sliver hashes, 1000 shards),
about a second of work per blob. Here it is unpadded base64url of SHA-256("fake-walrus" ‖ content): same length
and alphabet, also content-derived. The relayer never recomputes or validates blob ids.

What the real daemons do and this stand-in models (MystenLabs/walrus ``crates/walrus-service/src/client``):
- Blobs are deletable unless ``permanent=true`` (the default since v1.33).
- A repeated upload answers ``alreadyCertified``: with ``event`` for a certified *permanent* blob, but with
  ``object`` (the Blob's id) for a *deletable* blob only when the publisher's own wallet still owns such a
  Blob; a deletable blob it handed away (``send_object_to``) is stored anew (``newlyCreated``).
- An aggregator can answer 404 for a short while right after certification, before its storage nodes
  have the slivers (``not_found_after_certification_seconds``).

Fault injection (aggregator-racing tests): ``POST /_localnet/faults {"delayMs", "unavailable", "lostBlobIds",
"loseAllBlobs"}`` replaces an app's faults, ``DELETE`` clears them; they apply to ``/v1/blobs`` routes only.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import math
import os
import re
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chain.address import normalize_address
from chain.base58 import b58encode
from localnet.errors import BlobTooLarge, InvalidBlobId

DEFAULT_MAX_BLOB_BYTES = 10 * 1024 * 1024  # what public testnet publishers accept
MAX_EPOCHS_AHEAD = 53  # Walrus mainnet's max_epochs_ahead
MAX_ADMIN_BODY_BYTES = 64 * 1024
MAX_RANGE_HEADER_LENGTH = 100
# Used when neither send_object_to nor share is given: the publisher's own wallet keeps the Blob.
DEFAULT_PUBLISHER_ADDRESS = "0x" + hashlib.sha256(b"localnet-walrus-publisher").hexdigest()
_BLOB_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
_RANGE_PATTERN = re.compile(r"bytes=(\d*)-(\d*)")
_ERROR_DOMAIN = "daemon.walrus.space"
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "INVALID_ARGUMENT", 503: "UNAVAILABLE"}
_METADATA_BYTES_ON_ALL_SHARDS = 66_012_000  # 1000 shards × 66 012 B of sliver-hash metadata
_PRICE_PER_MIB_PER_EPOCH = 100


def blob_id_for(content: bytes) -> str:
    """The stand-in blob id: unpadded base64url of SHA-256("fake-walrus" ‖ content)."""
    digest = hashlib.sha256(b"fake-walrus" + content).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_blob_id(blob_id: str) -> str:
    if not isinstance(blob_id, str) or not _BLOB_ID_PATTERN.fullmatch(blob_id):
        raise InvalidBlobId("a blob id is 43 characters of unpadded base64url")
    return blob_id


def encoded_length(size: int) -> int:
    """Rough RS2 storage size: metadata-dominated for small blobs, about 5× the size for large ones."""
    return _METADATA_BYTES_ON_ALL_SHARDS + 5 * size


@dataclasses.dataclass(frozen=True)
class Certification:
    """What the publisher remembers of a certified blob, for ``alreadyCertified`` and the aggregators."""

    object_id: str
    registered_epoch: int
    end_epoch: int
    tx_digest: str
    deletable: bool = True
    certified_at: float = 0.0  # clock seconds; aggregators may not serve the blob at once


@dataclasses.dataclass(frozen=True)
class OwnedBlob:
    object_id: str
    end_epoch: int
    deletable: bool


class BlobChain(Protocol):
    """What the publisher needs from Sui: create a certified Blob object, and find one its wallet owns."""

    def create_blob(self, blob_id: str, size: int, owner: str, *, end_epoch: int, deletable: bool) -> str: ...

    def owned_blob(self, owner: str, blob_id: str) -> OwnedBlob | None: ...


class BlobStore:
    """``<dir>/<id[:2]>/<id>.blob`` plus a ``.json`` certification record; writes are temp file + rename, so
    a crash never leaves a half-written blob under its final name."""

    def __init__(self, directory: Path | str, *, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        self.directory = Path(directory)
        self.max_blob_bytes = max_blob_bytes
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, blob_id: str, suffix: str) -> Path:
        check_blob_id(blob_id)
        return self.directory / blob_id[:2] / (blob_id + suffix)

    def _write_atomically(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def put(self, content: bytes) -> str:
        """Store ``content`` (idempotent) and return its blob id."""
        if len(content) > self.max_blob_bytes:
            raise BlobTooLarge(f"blob of {len(content)} bytes exceeds the cap of {self.max_blob_bytes} bytes")
        blob_id = blob_id_for(content)
        path = self._path(blob_id, ".blob")
        if not path.exists():
            self._write_atomically(path, content)
        return blob_id

    def get(self, blob_id: str) -> bytes | None:
        try:
            return self._path(blob_id, ".blob").read_bytes()
        except (FileNotFoundError, InvalidBlobId):
            return None

    def certification(self, blob_id: str) -> Certification | None:
        try:
            record = json.loads(self._path(blob_id, ".json").read_text("utf-8"))
            return Certification(**record)
        except (FileNotFoundError, InvalidBlobId):
            return None

    def record_certification(self, blob_id: str, certification: Certification) -> None:
        data = json.dumps(dataclasses.asdict(certification), sort_keys=True).encode("utf-8")
        self._write_atomically(self._path(blob_id, ".json"), data)


@dataclasses.dataclass(frozen=True)
class Faults:
    """Injected misbehaviour of one server (``app.state.faults``); the default is a healthy server."""

    delay_ms: int = 0
    unavailable: bool = False
    lost_blob_ids: frozenset[str] = frozenset()
    lose_all_blobs: bool = False

    @classmethod
    def from_json(cls, data: object) -> Faults:
        if not isinstance(data, dict) or set(data) - {"delayMs", "unavailable", "lostBlobIds", "loseAllBlobs"}:
            raise ValueError("faults are an object with delayMs, unavailable, lostBlobIds, loseAllBlobs")
        delay_ms, lost = data.get("delayMs", 0), data.get("lostBlobIds", [])
        unavailable, lose_all = data.get("unavailable", False), data.get("loseAllBlobs", False)
        if type(delay_ms) is not int or not 0 <= delay_ms <= 600_000:
            raise ValueError("delayMs must be an integer in [0, 600000]")
        if not isinstance(lost, list) or not all(isinstance(item, str) for item in lost):
            raise ValueError("lostBlobIds must be a list of blob ids")
        if not isinstance(unavailable, bool) or not isinstance(lose_all, bool):
            raise ValueError("unavailable and loseAllBlobs must be booleans")
        return cls(delay_ms, unavailable, frozenset(lost), lose_all)

    def to_json(self) -> dict[str, object]:
        return {"delayMs": self.delay_ms, "unavailable": self.unavailable,
                "lostBlobIds": sorted(self.lost_blob_ids), "loseAllBlobs": self.lose_all_blobs}

    def loses(self, blob_id: str) -> bool:
        return self.lose_all_blobs or blob_id in self.lost_blob_ids


def walrus_error(code: int, reason: str, message: str) -> JSONResponse:
    """Walrus' ``Status`` error body (AIP-193 shape, domain ``daemon.walrus.space``)."""
    status = _STATUS_NAMES.get(code, "INTERNAL")
    info = {"@type": "ErrorInfo", "reason": reason, "domain": _ERROR_DOMAIN, "metadata": {}}
    return JSONResponse({"error": {"code": code, "status": status, "message": message, "details": [info]}},
                        status_code=code)


async def _apply_faults(request: Request) -> Response | None:
    faults: Faults = request.app.state.faults
    if faults.delay_ms:
        await asyncio.sleep(faults.delay_ms / 1000)
    if faults.unavailable:
        return walrus_error(503, "SERVICE_UNAVAILABLE", "temporarily unavailable (injected fault)")
    return None


async def _faults_route(request: Request) -> Response:
    state = request.app.state
    if request.method == "DELETE":
        state.faults = Faults()
    elif request.method == "POST":
        body = await _read_capped(request, MAX_ADMIN_BODY_BYTES)
        try:
            state.faults = Faults.from_json(json.loads(body) if body is not None else None)
        except ValueError as error:
            return walrus_error(400, "INVALID_FAULTS", str(error))
    return JSONResponse(state.faults.to_json())


async def _read_capped(request: Request, cap: int) -> bytes | None:
    """The request body, or ``None`` as soon as it exceeds ``cap`` bytes."""
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise ValueError(f"{name} must be true or false")
    return value.lower() == "true"


def build_publisher_app(store: BlobStore, chain: BlobChain, *, max_blob_bytes: int,
                        current_epoch: Callable[[], int], publisher_address: str = DEFAULT_PUBLISHER_ADDRESS,
                        clock: Callable[[], float] = time.time) -> Starlette:
    """``PUT /v1/blobs``; ``chain`` creates Blob objects and answers which ones the publisher's wallet owns.

    The blob files are written (and fsynced) in a worker thread, so a slow disk holds up only the stores of
    one content (a lock per blob id keeps "store, then certify" whole), not every other request."""
    publishing: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def put_blob(request: Request) -> Response:
        failure = await _apply_faults(request)
        if failure is not None:
            return failure
        try:
            epochs_text = request.query_params.get("epochs", "1")
            if not epochs_text.isdigit() or not 1 <= int(epochs_text) <= MAX_EPOCHS_AHEAD:
                raise ValueError(f"epochs must be an integer in [1, {MAX_EPOCHS_AHEAD}]")
            force, share, permanent = _flag(request, "force"), _flag(request, "share"), _flag(request, "permanent")
            deletable = _flag(request, "deletable") or not permanent
            if permanent and _flag(request, "deletable"):
                raise ValueError("a blob cannot be both permanent and deletable")
            send_to = request.query_params.get("send_object_to")
            if send_to is not None and share:
                raise ValueError("send_object_to and share are mutually exclusive")
            owner = normalize_address(send_to) if send_to is not None else publisher_address
        except ValueError as error:
            return walrus_error(400, "INVALID_QUERY_PARAMETERS", str(error))
        content = await _read_capped(request, max_blob_bytes)
        if content is None:
            return walrus_error(413, "BLOB_TOO_LARGE", f"the blob exceeds {max_blob_bytes} bytes")
        lock = publishing.setdefault(blob_id_for(content), asyncio.Lock())
        async with lock:
            return await _publish(content, int(epochs_text), force=force, owner=owner, deletable=deletable)

    async def _publish(content: bytes, epochs: int, *, force: bool, owner: str, deletable: bool) -> Response:
        epoch = current_epoch()
        end_epoch = epoch + epochs
        blob_id = await asyncio.to_thread(store.put, content)
        if not force:
            certified = _already_certified(store, chain, publisher_address, blob_id, end_epoch, deletable)
            if certified is not None:
                return JSONResponse({"alreadyCertified": certified})
        object_id = chain.create_blob(blob_id, len(content), owner, end_epoch=end_epoch, deletable=deletable)
        digest = hashlib.sha256(b"localnet-walrus-certify" + blob_id.encode() + object_id.encode()).digest()
        await asyncio.to_thread(store.record_certification, blob_id, Certification(
            object_id, epoch, end_epoch, b58encode(digest), deletable, clock()))
        storage_size = encoded_length(len(content))
        storage_id = "0x" + hashlib.sha256(b"localnet-walrus-storage" + object_id.encode()).hexdigest()
        blob_object = {
            "id": object_id, "registeredEpoch": epoch, "blobId": blob_id, "size": len(content),
            "encodingType": "RS2", "certifiedEpoch": epoch,
            "storage": {"id": storage_id, "startEpoch": epoch, "endEpoch": end_epoch, "storageSize": storage_size},
            "deletable": deletable,
        }
        cost = math.ceil(storage_size / (1024 * 1024)) * epochs * _PRICE_PER_MIB_PER_EPOCH
        return JSONResponse({"newlyCreated": {
            "blobObject": blob_object,
            "resourceOperation": {"registerFromScratch": {"encodedLength": storage_size,
                                                          "epochsAhead": epochs}},
            "cost": cost}})

    return _app([Route("/v1/blobs", put_blob, methods=["PUT"])], "Walrus publisher (localnet)")


def _already_certified(store: BlobStore, chain: BlobChain, publisher_address: str, blob_id: str, end_epoch: int,
                       deletable: bool) -> dict[str, object] | None:
    """The ``alreadyCertified`` answer, if the publisher would give one (``None``: store anew)."""
    if deletable:
        owned = chain.owned_blob(publisher_address, blob_id)
        if owned is None or not owned.deletable or owned.end_epoch < end_epoch:
            return None
        return {"blobId": blob_id, "object": owned.object_id, "endEpoch": owned.end_epoch}
    known = store.certification(blob_id)
    if known is None or known.deletable or known.end_epoch < end_epoch:
        return None
    return {"blobId": blob_id, "event": {"txDigest": known.tx_digest, "eventSeq": "0"}, "endEpoch": known.end_epoch}


def _requested_span(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive (first, last) of one ``bytes=`` range; ``None``: send it all (no or ignorable header: several
    ranges, other units). ``ValueError`` if unsatisfiable."""
    match = _RANGE_PATTERN.fullmatch(header.strip()) if header and len(header) <= MAX_RANGE_HEADER_LENGTH else None
    if match is None or match.groups() == ("", ""):
        return None
    first_text, last_text = match.groups()
    if first_text == "":
        first, last = max(0, size - int(last_text)), size - 1
    else:
        first, last = int(first_text), min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or last < first:
        raise ValueError("unsatisfiable range")
    return first, last


def build_aggregator_app(store: BlobStore, *, name: str, not_found_after_certification_seconds: float = 0.0,
                         clock: Callable[[], float] = time.time) -> Starlette:
    """``GET /v1/blobs/{blobId}`` (honours ``Range``) and ``GET /v1/api`` over the shared :class:`BlobStore`.

    For ``not_found_after_certification_seconds`` after a blob's certification it answers 404, as an
    aggregator whose storage nodes have not caught up does.
    """

    def too_fresh(blob_id: str) -> bool:
        if not_found_after_certification_seconds <= 0:
            return False
        certification = store.certification(blob_id)
        return certification is not None and clock() - certification.certified_at < not_found_after_certification_seconds

    async def get_blob(request: Request) -> Response:
        failure = await _apply_faults(request)
        if failure is not None:
            return failure
        blob_id = request.path_params["blob_id"]
        try:
            check_blob_id(blob_id)
        except InvalidBlobId as error:
            return walrus_error(400, "INVALID_BLOB_ID", str(error))
        content = None if request.app.state.faults.loses(blob_id) or too_fresh(blob_id) else store.get(blob_id)
        if content is None:
            return walrus_error(404, "BLOB_NOT_FOUND", "the requested blob has not been found on Walrus")
        headers = {"accept-ranges": "bytes", "etag": f'"{blob_id}"', "x-localnet-aggregator": name}
        try:
            span = _requested_span(request.headers.get("range"), len(content))
        except ValueError:
            return Response(status_code=416, headers={"content-range": f"bytes */{len(content)}"})
        if span is not None:
            first, last = span
            headers["content-range"] = f"bytes {first}-{last}/{len(content)}"
            return Response(content[first:last + 1], 206, headers, media_type="application/octet-stream")
        return Response(content, headers=headers, media_type="application/octet-stream")

    return _app([Route("/v1/blobs/{blob_id}", get_blob, methods=["GET"])], f"Walrus aggregator {name} (localnet)")


def _app(routes: list[Route], title: str) -> Starlette:
    async def api(request: Request) -> Response:  # health target; real servers serve their OpenAPI here
        return JSONResponse({"openapi": "3.1.0", "info": {"title": title, "version": "localnet"},
                             "paths": {route.path: {} for route in routes}})

    app = Starlette(routes=[*routes, Route("/v1/api", api, methods=["GET"]),
                            Route("/_localnet/faults", _faults_route, methods=["GET", "POST", "DELETE"])])
    app.state.faults = Faults()  # replaced, never mutated, by the admin route
    return app
