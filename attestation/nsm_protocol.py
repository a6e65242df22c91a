"""The NSM request/response messages, as CBOR bytes (no I/O here).

The driver carries serde-CBOR encodings of the Rust enums ``Request`` and
``Response`` of aws-nitro-enclaves-nsm-api (``src/api/mod.rs``), which serde
tags externally: a variant with fields is ``{"Name": {field: value}}``, a
variant without fields is the text ``"Name"``, and an error is
``{"Error": "<ErrorCode>"}``. ``None`` fields are CBOR null.

Both directions are implemented so the simulator can answer the exact bytes
:class:`attestation.nsm.NsmAttester` sends to the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import cbor2

from . import strict_cbor
from .errors import DecodeError, NsmError

# Buffer sizes of the nsm-api driver (src/driver/mod.rs).
REQUEST_MAX_SIZE = 0x1000
RESPONSE_MAX_SIZE = 0x3000
PCR_COUNT = 32
# The nsm-api validation text limits user_data and nonce to 512 bytes (its CDDL says 1024).
MAX_USER_DATA_SIZE = 512
MAX_NONCE_SIZE = 512
MAX_PUBLIC_KEY_SIZE = 1024
MAX_EXTEND_DATA_SIZE = 1024

ERROR_CODES = (
    "Success", "InvalidArgument", "InvalidIndex", "InvalidResponse", "ReadOnlyIndex",
    "InvalidOperation", "BufferTooSmall", "InputTooLarge", "InternalError",
)  # fmt: skip


@dataclass(frozen=True)
class DescribePcr:
    index: int


@dataclass(frozen=True)
class ExtendPcr:
    index: int
    data: bytes


@dataclass(frozen=True)
class LockPcr:
    index: int


@dataclass(frozen=True)
class LockPcrs:
    count: int  # nsm-api "range": locks PCRs [0, count)


@dataclass(frozen=True)
class AttestationRequest:
    user_data: bytes | None
    nonce: bytes | None
    public_key: bytes | None


@dataclass(frozen=True)
class GetRandom:
    pass


NsmRequest = DescribePcr | ExtendPcr | LockPcr | LockPcrs | AttestationRequest | GetRandom


def validate_request(request: NsmRequest) -> None:
    """Check arguments the way the device would, raising ValueError before any I/O."""
    if isinstance(request, (DescribePcr, ExtendPcr, LockPcr)) and not 0 <= request.index < PCR_COUNT:
        raise ValueError(f"PCR index must be in 0..{PCR_COUNT - 1}")
    if isinstance(request, ExtendPcr) and not 0 < len(request.data) <= MAX_EXTEND_DATA_SIZE:
        raise ValueError(f"PCR extend data must be 1..{MAX_EXTEND_DATA_SIZE} bytes")
    if isinstance(request, LockPcrs) and not 0 < request.count <= PCR_COUNT:
        raise ValueError(f"LockPCRs count must be in 1..{PCR_COUNT}")
    if isinstance(request, AttestationRequest):
        for name, value, limit in (
            ("user_data", request.user_data, MAX_USER_DATA_SIZE),
            ("nonce", request.nonce, MAX_NONCE_SIZE),
            ("public_key", request.public_key, MAX_PUBLIC_KEY_SIZE),
        ):
            if value is not None and (not isinstance(value, bytes) or len(value) > limit):
                raise ValueError(f"{name} must be bytes of at most {limit} bytes")


def encode_request(request: NsmRequest) -> bytes:
    validate_request(request)
    message: Any
    if isinstance(request, DescribePcr):
        message = {"DescribePCR": {"index": request.index}}
    elif isinstance(request, ExtendPcr):
        message = {"ExtendPCR": {"index": request.index, "data": request.data}}
    elif isinstance(request, LockPcr):
        message = {"LockPCR": {"index": request.index}}
    elif isinstance(request, LockPcrs):
        message = {"LockPCRs": {"range": request.count}}
    elif isinstance(request, AttestationRequest):
        fields = {"user_data": request.user_data, "nonce": request.nonce, "public_key": request.public_key}
        message = {"Attestation": fields}
    elif isinstance(request, GetRandom):
        message = "GetRandom"
    else:
        raise TypeError(f"not an NSM request: {request!r}")
    encoded = cbor2.dumps(message)
    if len(encoded) > REQUEST_MAX_SIZE:
        raise ValueError(f"NSM request is larger than {REQUEST_MAX_SIZE} bytes")
    return encoded


def decode_request(raw: bytes) -> NsmRequest:
    """Parse request bytes (simulator side); raise NsmError("InvalidArgument") if malformed."""
    name, body = _split_variant(raw, max_size=REQUEST_MAX_SIZE, error_code="InvalidArgument")
    try:
        if name == "GetRandom" and body is None:
            return GetRandom()
        if name == "DescribePCR":
            request: NsmRequest = DescribePcr(index=_field(body, "index", int))
        elif name == "ExtendPCR":
            request = ExtendPcr(index=_field(body, "index", int), data=_field(body, "data", bytes))
        elif name == "LockPCR":
            request = LockPcr(index=_field(body, "index", int))
        elif name == "LockPCRs":
            request = LockPcrs(count=_field(body, "range", int))
        elif name == "Attestation":
            request = AttestationRequest(
                user_data=_field(body, "user_data", bytes, optional=True),
                nonce=_field(body, "nonce", bytes, optional=True),
                public_key=_field(body, "public_key", bytes, optional=True),
            )
        else:
            raise NsmError("InvalidOperation", f"unknown request {name!r}")
        validate_request(request)
    except ValueError as error:
        raise NsmError("InvalidArgument", str(error)) from None
    return request


def encode_response(name: str, body: dict[str, Any] | None) -> bytes:
    """Encode a successful response; ``body`` None means a variant without fields."""
    return cbor2.dumps(name if body is None else {name: body})


def encode_error(code: str) -> bytes:
    if code not in ERROR_CODES:
        raise ValueError(f"unknown NSM error code {code!r}")
    return cbor2.dumps({"Error": code})


def decode_response(raw: bytes, *, expected: str) -> dict[str, Any] | None:
    """Return the body of response variant ``expected``; raise NsmError for errors or surprises."""
    name, body = _split_variant(raw, max_size=RESPONSE_MAX_SIZE, error_code="InvalidResponse")
    if name == "Error":
        raise NsmError(body if body in ERROR_CODES else "InvalidResponse", "reported by the NSM")
    if name != expected:
        raise NsmError("InvalidResponse", f"expected a {expected} response, got {name}")
    if body is not None and not isinstance(body, dict):
        raise NsmError("InvalidResponse", f"{name} response body is not a map")
    return body


def _split_variant(raw: bytes, *, max_size: int, error_code: str) -> tuple[str, Any]:
    try:
        value = strict_cbor.loads(raw, max_size=max_size)
    except DecodeError as error:
        raise NsmError(error_code, str(error)) from None
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict) and len(value) == 1:
        ((name, body),) = value.items()
        if isinstance(name, str):
            return name, body
    raise NsmError(error_code, "message is neither a variant name nor a one-entry map")


def _field(body: Any, name: str, kind: type, *, optional: bool = False) -> Any:
    if not isinstance(body, dict):
        raise ValueError("request body must be a map")
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"field {name!r} must be {kind.__name__}")
    return value


_Field = TypeVar("_Field")


def response_field(body: dict[str, Any] | None, name: str, kind: type[_Field]) -> _Field:
    """Read a typed field of a response body, raising NsmError("InvalidResponse") if absent."""
    value = None if body is None else body.get(name)
    if not isinstance(value, kind):
        raise NsmError("InvalidResponse", f"response field {name!r} must be {kind.__name__}")
    return value
