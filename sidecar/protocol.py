"""The relayer ↔ sidecar wire contract: the only definition of it, imported by both ends.

Every operation is ``POST <path>`` with a JSON object body and a JSON object reply; byte fields are standard
base64. Each request type names its path (``PATH``) and its reply type (``Reply``). ``to_json()`` builds the
JSON-ready object; ``from_json()`` checks types, sizes, batch caps and base64 and raises ``ProtocolError``.
Failures are ``ErrorReply`` objects ``{"error": message, "kind": ErrorKind}`` sent with ``status_of(kind)``.

    operation                  request                 reply
    GET  /health               —                       HealthReply
    POST /seal/encrypt         EncryptRequest          EncryptReply
    POST /walrus/upload        UploadRequest           UploadReply
    POST /blobs/open           OpenBlobsRequest        OpenBlobsReply   (read + decrypt inside the sidecar)
    POST /walrus/query-blobs   QueryBlobsRequest       QueryBlobsReply

An upload may carry a ``SessionTag`` (a session-chain frame, relayer/sessions/): the Blob is then also tagged
with the session id and sequence (and ``closed`` on a closing frame), so any relayer finds a session's frames
on chain; restore's tag query leaves such blobs out (they are not memories).

This module imports nothing of ours, so the relayer can import it without importing the key holder.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Self

MIB = 1024 * 1024

# --- caps: both ends enforce the same numbers ---------------------------------------------------------
MAX_OPEN_BATCH = 100  # blobs per /blobs/open: a whole recall (limit ≤ 100) is one call
MAX_QUERY_BLOBS = 10_000  # tagged blobs one /walrus/query-blobs reply may list
MAX_DATA_BYTES = 3 * MIB  # any one byte field, decoded (fits the default 4 MiB request cap once base64'd)
MAX_BLOB_ID_LENGTH = 128
MAX_NAME_LENGTH = 1024  # namespaces, job ids, agent ids, statuses, messages
MAX_SESSION_LENGTH = 16 * 1024  # the client's x-seal-session header value
MAX_EPOCHS = 5  # Walrus storage epochs per upload
MAX_JSON_BYTES = 512 * MIB  # no message of this protocol can be larger (100 blobs × 3 MiB, base64'd)

MAX_SESSION_SEQUENCE = 2**53 - 1
# Blob metadata keys of a session-chain frame (next to the memwal_* keys every upload writes).
SESSION_ID_TAG = "memwal_session_id"
SESSION_SEQUENCE_TAG = "memwal_session_seq"
SESSION_CLOSED_TAG = "memwal_session_closed"

_BLOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_SUI_ID = re.compile(r"^(0x)?[0-9a-fA-F]{1,64}$")


class ProtocolError(ValueError):
    """A message that does not follow this contract; the message names the field."""


class ErrorKind(StrEnum):
    """Why the sidecar refused or failed an operation; one name per failure, on both ends."""

    UNAUTHORIZED = "Unauthorized"  # missing or wrong bearer token
    BAD_INPUT = "BadInput"  # the request breaks this contract or names another package
    INVALID_SESSION = "InvalidSession"  # the client's x-seal-session is missing, malformed, expired or foreign
    ACCESS_DENIED = "AccessDenied"  # Seal key servers (or the account lookup) refused this caller
    UPSTREAM_UNAVAILABLE = "UpstreamUnavailable"  # Walrus, Sui or key servers unreachable or overloaded
    TRANSFER_FAILED = "TransferFailed"  # the blob is stored but tagging/transfer failed; a retry resumes it
    INTERNAL = "Internal"  # a bug in the sidecar


_STATUS: Mapping[ErrorKind, int] = {
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.BAD_INPUT: 400,
    ErrorKind.INVALID_SESSION: 400,
    ErrorKind.ACCESS_DENIED: 403,
    ErrorKind.UPSTREAM_UNAVAILABLE: 503,
    ErrorKind.TRANSFER_FAILED: 500,
    ErrorKind.INTERNAL: 500,
}


def status_of(kind: ErrorKind) -> int:
    """The HTTP status the sidecar answers ``kind`` with."""
    return _STATUS[kind]


class BlobStatus(StrEnum):
    """What became of one blob in /blobs/open."""

    OPENED = "opened"  # plaintext attached
    NOT_FOUND = "not_found"  # every aggregator answered 404
    CORRUPT = "corrupt"  # not a Seal object of this package, or it does not decrypt with verified keys
    UNAVAILABLE = "unavailable"  # no aggregator delivered it this time (timeouts, 5xx, too large)


# --- field readers ------------------------------------------------------------------------------------


def parse_json_object(raw: bytes, *, max_bytes: int = MAX_JSON_BYTES) -> Mapping[str, object]:
    """Decode one JSON object of at most ``max_bytes``; nesting too deep for the parser is refused too."""
    if len(raw) > max_bytes:
        raise ProtocolError(f"message larger than {max_bytes} bytes")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ProtocolError("body must be JSON") from None
    if not isinstance(value, dict):
        raise ProtocolError("body must be a JSON object")
    return value


def _object(value: object, name: str = "body") -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{name} must be a JSON object")
    return value


def _text(body: Mapping[str, object], name: str, *, max_length: int = MAX_NAME_LENGTH) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise ProtocolError(f"{name} must be a non-empty string of at most {max_length} characters")
    return value


def _optional_text(body: Mapping[str, object], name: str) -> str | None:
    if body.get(name) is None:
        return None
    return _text(body, name)


def _sui_id(body: Mapping[str, object], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not _SUI_ID.match(value):
        raise ProtocolError(f"{name} must be a Sui address or object id")
    return value


def _blob_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not _BLOB_ID.match(value):
        raise ProtocolError(f"{name} must be a Walrus blob id")
    return value


def _integer(body: Mapping[str, object], name: str, *, minimum: int, maximum: int) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise ProtocolError(f"{name} must be an integer in {minimum}..{maximum}")
    return value


def _flag(body: Mapping[str, object], name: str) -> bool:
    value = body.get(name)
    if not isinstance(value, bool):
        raise ProtocolError(f"{name} must be true or false")
    return value


def _list(body: Mapping[str, object], name: str, *, maximum: int, minimum: int = 0) -> Sequence[object]:
    value = body.get(name)
    if not isinstance(value, list) or not minimum <= len(value) <= maximum:
        raise ProtocolError(f"{name} must be a list of {minimum}..{maximum} items")
    return value


def _bytes(body: Mapping[str, object], name: str, *, max_bytes: int = MAX_DATA_BYTES) -> bytes:
    value = body.get(name)
    # 4 base64 characters carry 3 bytes: refuse oversized text before decoding it.
    if not isinstance(value, str) or len(value) > (max_bytes + 2) // 3 * 4:
        raise ProtocolError(f"{name} must be base64 of at most {max_bytes} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{name} must be base64") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _kind(value: object) -> ErrorKind:
    if isinstance(value, str) and value in ErrorKind.__members__.values():
        return ErrorKind(value)
    raise ProtocolError("kind is not a known error kind")


# --- errors -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorReply:
    kind: ErrorKind
    message: str

    def to_json(self) -> dict[str, object]:
        return {"error": self.message, "kind": self.kind.value}

    @classmethod
    def from_json(cls, value: object) -> Self:
        body = _object(value)
        message = body.get("error", "")
        if not isinstance(message, str):
            raise ProtocolError("error must be a string")
        return cls(_kind(body.get("kind")), message[:MAX_NAME_LENGTH])


# --- health -------------------------------------------------------------------------------------------

HEALTH_PATH = "/health"


@dataclass(frozen=True)
class HealthReply:
    uptime_ms: int
    active_uploads: int

    def to_json(self) -> dict[str, object]:
        return {"status": "ok", "uptimeMs": self.uptime_ms, "activeWalrusUploads": self.active_uploads}

    @classmethod
    def from_json(cls, value: object) -> Self:
        body = _object(value)
        if body.get("status") != "ok":
            raise ProtocolError("status must be ok")
        return cls(
            _integer(body, "uptimeMs", minimum=0, maximum=2**63 - 1),
            _integer(body, "activeWalrusUploads", minimum=0, maximum=2**31 - 1),
        )


# --- encrypt ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncryptReply:
    ciphertext: bytes

    def to_json(self) -> dict[str, object]:
        return {"encryptedData": _b64(self.ciphertext)}

    @classmethod
    def from_json(cls, value: object) -> Self:
        return cls(_bytes(_object(value), "encryptedData"))


@dataclass(frozen=True)
class EncryptRequest:
    """Seal-encrypt ``data`` for ``owner`` (inner id = the owner's address bytes) under ``package_id``."""

    PATH: ClassVar[str] = "/seal/encrypt"
    Reply: ClassVar[type[EncryptReply]] = EncryptReply

    data: bytes
    owner: str
    package_id: str

    def to_json(self) -> dict[str, object]:
        return {"data": _b64(self.data), "owner": self.owner, "packageId": self.package_id}

    @classmethod
    def from_json(cls, value: object) -> Self:
        body = _object(value)
        return cls(_bytes(body, "data"), _sui_id(body, "owner"), _sui_id(body, "packageId"))


# --- upload -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadReply:
    blob_id: str
    object_id: str
    transfer_status: str

    def to_json(self) -> dict[str, object]:
        return {"blobId": self.blob_id, "objectId": self.object_id, "transferStatus": self.transfer_status}

    @classmethod
    def from_json(cls, value: object) -> Self:
        body = _object(value)
        return cls(_blob_id(body.get("blobId"), "blobId"), _sui_id(body, "objectId"), _text(body, "transferStatus"))


@dataclass(frozen=True)
class SessionTag:
    """Marks an upload as frame ``sequence`` of session ``session_id`` (on chain, as Blob metadata)."""

    session_id: str
    sequence: int
    closed: bool = False

    def __post_init__(self) -> None:
        if not _SESSION_ID.match(self.session_id):
            raise ProtocolError("session.id must be a session id")
        if isinstance(self.sequence, bool) or not 0 <= self.sequence <= MAX_SESSION_SEQUENCE:
            raise ProtocolError(f"session.sequence must be an integer in 0..{MAX_SESSION_SEQUENCE}")

    def pairs(self) -> tuple[tuple[str, str], ...]:
        pairs = ((SESSION_ID_TAG, self.session_id), (SESSION_SEQUENCE_TAG, str(self.sequence)))
        return (*pairs, (SESSION_CLOSED_TAG, "true")) if self.closed else pairs

    def to_json(self) -> dict[str, object]:
        return {"id": self.session_id, "sequence": self.sequence, "closed": self.closed}

    @classmethod
    def from_json(cls, value: object) -> Self:
        body = _object(value, "session")
        session_id = body.get("id")
        if not isinstance(session_id, str):
            raise ProtocolError("session.id must be a session id")
        return cls(session_id, _integer(body, "sequence", minimum=0, maximum=MAX_SESSION_SEQUENCE), _flag(body, "closed"))


@dataclass(frozen=True)
class UploadRequest:
    """Store ``data`` on Walrus, tag the Blob with MemWal metadata and transfer it to ``owner``.

    ``job_id`` makes the upload idempotent: a retry with the same id never creates a second blob.
    """

    PATH: ClassVar[str] = "/walrus/upload"
    Reply: ClassVar[type[UploadReply]] = UploadReply

    data: bytes
    owner: str
    namespace: str
    package_id: str
    epochs: int
    job_id: str | None = None
    agent_id: str | None = None
    session: SessionTag | None = None  # a session-chain frame: tag the Blob with its session and sequence

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "data": _b64(self.data),
            "owner": self.owner,
            "namespace": self.namespace,
            "packageId": self.package_id,
            "epochs": self.epochs,
            "jobId": self.job_id,
            "agentId": self.agent_id,
        }
        if self.session is not None:
            body["session"] = self.session.to_json()
        return body

    @classmethod
    def from_json(cls, value: object) -> Self:
        body = _object(value)
        return cls(
            data=_bytes(body, "data"),
            owner=_sui_id(body, "owner"),
            namespace=_text(body, "namespace"),
            package_id=_sui_id(body, "packageId"),
            epochs=_integer(body, "epochs", minimum=1, maximum=MAX_EPOCHS),
            job_id=_optional_text(body, "jobId"),
            agent_id=_optional_text(body, "agentId"),
            session=None if body.get("session") is None else SessionTag.from_json(body.get("session")),
        )


# --- open blobs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedBlob:
    """One blob's outcome. ``plaintext`` and ``ciphertext_bytes`` are set exactly when ``status`` is OPENED."""

    blob_id: str
    status: BlobStatus
    plaintext: bytes | None = None
    ciphertext_bytes: int | None = None  # the stored size, counted against the owner's storage quota

    def __post_init__(self) -> None:
        opened = self.status is BlobStatus.OPENED
        if opened != (self.plaintext is not None) or opened != (self.ciphertext_bytes is not None):
            raise ProtocolError("plaintext and ciphertextBytes come exactly with status opened")

    def to_json(self) -> dict[str, object]:
        entry: dict[str, object] = {"blobId": self.blob_id, "status": self.status.value}
        if self.plaintext is not None:
            entry["plaintext"] = _b64(self.plaintext)
            entry["ciphertextBytes"] = self.ciphertext_bytes
        return entry

    @classmethod
    def from_json(cls, value: object) -> Self:
        body = _object(value, "blobs[]")
        raw_status = body.get("status")
        if not isinstance(raw_status, str) or raw_status not in BlobStatus.__members__.values():
            raise ProtocolError("status is not a known blob status")
        status = BlobStatus(raw_status)
        if status is not BlobStatus.OPENED:
            return cls(_blob_id(body.get("blobId"), "blobId"), status)
        return cls(
            _blob_id(body.get("blobId"), "blobId"),
            status,
            _bytes(body, "plaintext"),
            _integer(body, "ciphertextBytes", minimum=1, maximum=MAX_DATA_BYTES),
        )


@dataclass(frozen=True)
class OpenBlobsReply:
    blobs: tuple[OpenedBlob, ...]  # one per requested id, in request order

    def to_json(self) -> dict[str, object]:
        return {"blobs": [blob.to_json() for blob in self.blobs]}

    @classmethod
    def from_json(cls, value: object) -> Self:
        entries = _list(_object(value), "blobs", maximum=MAX_OPEN_BATCH)
        return cls(tuple(OpenedBlob.from_json(entry) for entry in entries))


@dataclass(frozen=True)
class OpenBlobsRequest:
    """Read each blob (cache, raced aggregators) and Seal-decrypt it with the caller's session.

    ``session`` is the raw x-seal-session header the client sent; ``account_id`` is the caller's MemWal
    account (the seal_approve argument). Ids are distinct. A refused session or account fails the whole call.
    """

    PATH: ClassVar[str] = "/blobs/open"
    Reply: ClassVar[type[OpenBlobsReply]] = OpenBlobsReply

    blob_ids: tuple[str, ...]
    package_id: str
    account_id: str
    session: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.blob_ids) <= MAX_OPEN_BATCH:
            raise ProtocolError(f"blobIds must list 1..{MAX_OPEN_BATCH} ids")
        if len(set(self.blob_ids)) != len(self.blob_ids):
            raise ProtocolError("blobIds must be distinct")

    def to_json(self) -> dict[str, object]:
        return {
            "blobIds": list(self.blob_ids),
            "packageId": self.package_id,
            "accountId": self.account_id,
            "session": self.session,
        }

    @classmethod
    def from_json(cls, value: object) -> Self:
        body = _object(value)
        blob_ids = tuple(_blob_id(item, "blobIds[]") for item in _list(body, "blobIds", minimum=1, maximum=MAX_OPEN_BATCH))
        session = body.get("session")
        if not isinstance(session, str) or len(session) > MAX_SESSION_LENGTH:
            raise ProtocolError(f"session must be a string of at most {MAX_SESSION_LENGTH} characters")
        return cls(blob_ids, _sui_id(body, "packageId"), _sui_id(body, "accountId"), session)


# --- query blobs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaggedBlob:
    blob_id: str
    object_id: str
    namespace: str
    package_id: str

    def to_json(self) -> dict[str, object]:
        return {"blobId": self.blob_id, "objectId": self.object_id, "namespace": self.namespace, "packageId": self.package_id}

    @classmethod
    def from_json(cls, value: object) -> Self:
        body = _object(value, "blobs[]")
        return cls(
            _blob_id(body.get("blobId"), "blobId"), _sui_id(body, "objectId"), _text(body, "namespace"), _sui_id(body, "packageId")
        )


@dataclass(frozen=True)
class QueryBlobsReply:
    blobs: tuple[TaggedBlob, ...]
    capped: bool  # the walk stopped at its safety cap; more blobs may exist

    def to_json(self) -> dict[str, object]:
        return {"blobs": [blob.to_json() for blob in self.blobs], "total": len(self.blobs), "capped": self.capped}

    @classmethod
    def from_json(cls, value: object) -> Self:
        body = _object(value)
        entries = _list(body, "blobs", maximum=MAX_QUERY_BLOBS)
        return cls(tuple(TaggedBlob.from_json(entry) for entry in entries), _flag(body, "capped"))


@dataclass(frozen=True)
class QueryBlobsRequest:
    """The owner's Blob objects tagged for ``package_id`` and ``namespace`` (restore's source of truth)."""

    PATH: ClassVar[str] = "/walrus/query-blobs"
    Reply: ClassVar[type[QueryBlobsReply]] = QueryBlobsReply

    owner: str
    namespace: str
    package_id: str

    def to_json(self) -> dict[str, object]:
        return {"owner": self.owner, "namespace": self.namespace, "packageId": self.package_id}

    @classmethod
    def from_json(cls, value: object) -> Self:
        body = _object(value)
        return cls(_sui_id(body, "owner"), _text(body, "namespace"), _sui_id(body, "packageId"))
