"""The Nitro attestation document payload, parsed and bounds-checked.

``AttestationDocument.from_cose`` enforces every bound of the format (the same
limits as the nsm-api CDDL and nitrite) but checks no signature, so every
field is named ``unverified_*``. Only :class:`attestation.verifier.Verifier`
turns it into a :class:`VerifiedDocument`.

Unknown payload keys: by default they are skipped and never read (their names
are kept in ``unknown_keys``), so a new NSM field does not break every
verifier; pass ``unknown_keys=UnknownKeys.REJECT`` to refuse them. Their
values must still be well-formed CBOR of the strict subset.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from . import strict_cbor
from .cose import MAX_DOCUMENT_SIZE, CoseSign1
from .errors import DecodeError

MAX_MODULE_ID_LENGTH = 1024
MAX_PCR_COUNT = 32
PCR_INDEX_LIMIT = 32  # indices 0..31
PCR_VALUE_LENGTHS = (32, 48, 64)
MAX_CERTIFICATE_SIZE = 1024
MAX_CABUNDLE_LENGTH = 8
MAX_OPTIONAL_FIELD_SIZE = 1024
SUPPORTED_DIGEST = "SHA384"

_MANDATORY_KEYS = ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle")
_OPTIONAL_KEYS = ("public_key", "user_data", "nonce")


class UnknownKeys(enum.Enum):
    """What ``from_cose`` does with payload keys outside the nine known ones."""

    IGNORE = "ignore"
    REJECT = "reject"


@dataclass(frozen=True)
class AttestationDocument:
    """A decoded document whose signature has NOT been checked yet."""

    envelope: CoseSign1
    unverified_module_id: str
    unverified_digest: str
    unverified_timestamp_ms: int
    unverified_pcrs: Mapping[int, bytes]
    unverified_certificate: bytes
    unverified_cabundle: tuple[bytes, ...]
    unverified_public_key: bytes | None
    unverified_user_data: bytes | None
    unverified_nonce: bytes | None
    unknown_keys: tuple[str, ...] = ()

    @classmethod
    def from_cose(
        cls,
        raw: bytes,
        *,
        max_size: int = MAX_DOCUMENT_SIZE,
        unknown_keys: UnknownKeys = UnknownKeys.IGNORE,
    ) -> AttestationDocument:
        """Decode a COSE_Sign1 attestation document; raise :class:`DecodeError` if malformed."""
        envelope = CoseSign1.from_bytes(raw, max_size=max_size)
        payload = strict_cbor.loads(envelope.payload, max_size=max_size)
        if not isinstance(payload, dict):
            raise DecodeError("attestation payload must be a map")
        for key in payload:
            if not isinstance(key, str):
                raise DecodeError("attestation payload keys must be text strings")
        for key in _MANDATORY_KEYS:
            if payload.get(key) is None:
                raise DecodeError(f"attestation payload lacks the mandatory field {key!r}")
        extra = tuple(key for key in payload if key not in _MANDATORY_KEYS + _OPTIONAL_KEYS)
        if extra and unknown_keys is UnknownKeys.REJECT:
            raise DecodeError(f"attestation payload has unknown fields {list(extra)}")
        return cls(
            envelope=envelope,
            unverified_module_id=_module_id(payload["module_id"]),
            unverified_digest=_digest(payload["digest"]),
            unverified_timestamp_ms=_timestamp(payload["timestamp"]),
            unverified_pcrs=_pcrs(payload["pcrs"]),
            unverified_certificate=_bounded_bytes("certificate", payload["certificate"], 1, MAX_CERTIFICATE_SIZE),
            unverified_cabundle=_cabundle(payload["cabundle"]),
            unverified_public_key=_optional_bytes("public_key", payload.get("public_key")),
            unverified_user_data=_optional_bytes("user_data", payload.get("user_data")),
            unverified_nonce=_optional_bytes("nonce", payload.get("nonce")),
            unknown_keys=extra,
        )

    @property
    def unverified_timestamp(self) -> datetime:
        """The document's (unverified) creation time as an aware UTC datetime."""
        return timestamp_to_datetime(self.unverified_timestamp_ms)


@dataclass(frozen=True)
class VerifiedDocument:
    """An attestation document that passed every step of ``Verifier.verify``.

    Only the verifier creates these; building one by hand proves nothing.
    """

    module_id: str
    digest: str
    timestamp: datetime
    pcrs: Mapping[int, bytes]
    certificate: bytes
    cabundle: tuple[bytes, ...]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None
    verified_at: datetime

    @classmethod
    def _from_checked(cls, document: AttestationDocument, *, verified_at: datetime) -> VerifiedDocument:
        return cls(
            module_id=document.unverified_module_id,
            digest=document.unverified_digest,
            timestamp=document.unverified_timestamp,
            pcrs=document.unverified_pcrs,
            certificate=document.unverified_certificate,
            cabundle=document.unverified_cabundle,
            public_key=document.unverified_public_key,
            user_data=document.unverified_user_data,
            nonce=document.unverified_nonce,
            verified_at=verified_at,
        )


def timestamp_to_datetime(milliseconds: int) -> datetime:
    """Milliseconds since the Unix epoch → aware UTC datetime (exact to the millisecond)."""
    seconds, remainder = divmod(milliseconds, 1000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=remainder * 1000)


def _is_int(value: Any) -> bool:
    # bool is a subclass of int in Python; CBOR true/false are not integers.
    return isinstance(value, int) and not isinstance(value, bool)


def _module_id(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_MODULE_ID_LENGTH:
        raise DecodeError(f"module_id must be a non-empty text string of at most {MAX_MODULE_ID_LENGTH} characters")
    return value


def _digest(value: Any) -> str:
    if value != SUPPORTED_DIGEST:
        raise DecodeError(f"digest must be {SUPPORTED_DIGEST!r}")
    return SUPPORTED_DIGEST


def _timestamp(value: Any) -> int:
    # Upper bound: year 9999, so conversion to datetime cannot overflow.
    if not _is_int(value) or not 0 < value < 253402300800000:
        raise DecodeError("timestamp must be a positive integer of milliseconds since the epoch")
    return int(value)


def _pcrs(value: Any) -> Mapping[int, bytes]:
    if not isinstance(value, dict) or not 1 <= len(value) <= MAX_PCR_COUNT:
        raise DecodeError(f"pcrs must be a map of 1..{MAX_PCR_COUNT} entries")
    checked: dict[int, bytes] = {}
    for index, measurement in value.items():
        if not _is_int(index) or not 0 <= index < PCR_INDEX_LIMIT:
            raise DecodeError(f"PCR index must be an integer in 0..{PCR_INDEX_LIMIT - 1}")
        if not isinstance(measurement, bytes) or len(measurement) not in PCR_VALUE_LENGTHS:
            raise DecodeError(f"PCR{index} must be a byte string of 32, 48 or 64 bytes")
        checked[int(index)] = measurement
    return MappingProxyType(dict(sorted(checked.items())))


def _bounded_bytes(name: str, value: Any, minimum: int, maximum: int) -> bytes:
    if not isinstance(value, bytes) or not minimum <= len(value) <= maximum:
        raise DecodeError(f"{name} must be a byte string of {minimum}..{maximum} bytes")
    return value


def _cabundle(value: Any) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CABUNDLE_LENGTH:
        raise DecodeError(f"cabundle must be an array of 1..{MAX_CABUNDLE_LENGTH} certificates")
    return tuple(_bounded_bytes("cabundle entry", item, 1, MAX_CERTIFICATE_SIZE) for item in value)


def _optional_bytes(name: str, value: Any) -> bytes | None:
    # The NSM writes absent optionals as CBOR null; an empty byte string is present-but-empty.
    if value is None:
        return None
    return _bounded_bytes(name, value, 0, MAX_OPTIONAL_FIELD_SIZE)
