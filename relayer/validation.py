"""Request validation at the boundary: bytes → bounded JSON → the typed request models of relayer/api_models.py.

Statuses follow upstream's Axum extractors where it has one; the rest are 400s that name the field:

    the content type is not JSON                                  415  UnsupportedContentType
    not JSON, NaN/Infinity, nested deeper than MAX_JSON_DEPTH     400  MalformedBody
    a string (key or value) that is not valid Unicode             400  InvalidValue naming the field
    not an object, a missing field, a field of the wrong JSON type 422  FieldError
    a value out of range (empty text, a zero vector, …)           400  InvalidValue

The field types below carry their own bounds: pydantic checks them when a route validates its body, and the
same types produce the JSON Schema of /openapi.json, so the document cannot drift from what is enforced.
Unknown fields are ignored, as upstream's serde does.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic_core import PydanticCustomError

from relayer.errors import FieldError, InvalidRequest, InvalidValue, MalformedBody, UnsupportedContentType

EMBEDDING_DIMENSIONS = 1536
MAX_REMEMBER_TEXT_BYTES = 1024 * 1024
MAX_BULK_TEXT_BYTES = 64 * 1024
MAX_ANALYZE_TEXT_BYTES = 64 * 1024
MAX_QUERY_BYTES = 16 * 1024
MAX_EMBED_TEXT_BYTES = 64 * 1024
MAX_BULK_ITEMS = 20
MAX_LIMIT = 100
MAX_NAMESPACE_LENGTH = 256
MAX_IDEMPOTENCY_KEY_LENGTH = 128
MAX_JOB_ID_LENGTH = 128
MAX_ENCRYPTED_BYTES = 1024 * 1024 + 4096
MAX_JSON_DEPTH = 32  # the deepest request body (bulk items) is 3
MAX_OCCURRED_AT_LENGTH = 64
# Schema-level ceilings of tags and TTLs; the operator's tighter limits are settings (relayer/memory_metadata.py).
MAX_TAGS_CEILING = 64
MAX_TAG_LENGTH_CEILING = 256  # characters
MAX_TTL_SECONDS_CEILING = 100 * 365 * 86_400
# Vectors are stored as float32 and compared by cosine distance: every component's square, and their sum over
# 1536 dimensions, must stay a finite, non-zero float32, or the distance is NaN (which no JSON can carry).
MAX_VECTOR_COMPONENT = 1e15
MIN_VECTOR_MAGNITUDE = 1e-15  # the largest |component| must reach this: a zero vector has no direction
MAX_QUERY_INTEGER_DIGITS = 9
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
_ASCII_DIGITS = re.compile(rf"^[0-9]{{1,{MAX_QUERY_INTEGER_DIGITS}}}$")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

# Pydantic error types that mean "missing or of the wrong JSON type" (422); every other error is a 400.
_TYPE_ERRORS = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}

Model = TypeVar("Model", bound=BaseModel)


class RequestModel(BaseModel):
    """Base of every request body: strict JSON types, unknown fields ignored, immutable once parsed."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


# --- bytes → JSON ---------------------------------------------------------------------------------------


def parse_json_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The request body as a JSON object of bounded depth whose strings are all valid Unicode."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedContentType("Expected request with `Content-Type: application/json`")
    try:
        value = json.loads(body or b"null", parse_constant=_reject_constant)
    except RecursionError:
        raise MalformedBody(f"Failed to parse the request body as JSON: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise MalformedBody(f"Failed to parse the request body as JSON: {exc}") from None
    check_json_value(value)
    if not isinstance(value, dict):
        raise FieldError("Request body must be a JSON object")
    return value


def check_json_value(value: object) -> None:
    """Depth ≤ MAX_JSON_DEPTH and no lone UTF-16 surrogate in any key or string; walked without recursion."""
    pending: list[tuple[object, str, int]] = [(value, "", 0)]
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise InvalidValue(f"`{path or 'body'}` is not valid Unicode (it contains a lone UTF-16 surrogate)")
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise MalformedBody(f"Failed to parse the request body as JSON: nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else key
                if _SURROGATE.search(key):
                    raise InvalidValue(f"a key in `{path or 'body'}` is not valid Unicode (it contains a lone UTF-16 surrogate)")
                pending.append((child, child_path, depth + 1))
        else:
            pending.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# --- JSON → model ---------------------------------------------------------------------------------------


def validate_request(model: type[Model], payload: dict[str, Any]) -> Model:
    """``payload`` as ``model``; the first problem becomes FieldError (422) or InvalidValue (400)."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise request_error(exc) from None


def request_error(exc: ValidationError) -> InvalidRequest:
    error = exc.errors(include_url=False)[0]
    path = field_path(error["loc"])
    kind = error["type"]
    if kind == "missing":
        return FieldError(f"missing field `{path}`")
    if kind in _TYPE_ERRORS:
        return FieldError(f"`{path}` must be {_TYPE_ERRORS[kind]}")
    if kind == "invalid_value":
        return InvalidValue(str(error["ctx"]["message"]))
    if kind == "literal_error":  # an unknown enum variant: serde's data error, 422 upstream
        return FieldError(f"`{path}` must be {error['ctx']['expected']}")
    return InvalidValue(f"`{path}`: {error['msg']}")


def field_path(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def invalid_value(message: str) -> PydanticCustomError:
    """A 400 (InvalidValue) with ``message``, raised from inside a pydantic validator."""
    return PydanticCustomError("invalid_value", "{message}", {"message": message})


# --- field types ----------------------------------------------------------------------------------------


def _text_checker(name: str, max_bytes: int, empty_message: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not value.strip():
            raise invalid_value(empty_message)
        size = len(value.encode("utf-8"))
        if size > max_bytes:
            raise invalid_value(f"`{name}` is {size} bytes; the limit is {max_bytes} bytes")
        return value

    return check


def text_rules(name: str, max_bytes: int, empty_message: str = "Text cannot be empty") -> tuple[AfterValidator, Any]:
    """A non-blank string of at most ``max_bytes`` UTF-8 bytes (JSON Schema counts characters: ≤ bytes).

    Use as ``Annotated[str, *text_rules(...)]``."""
    return (
        AfterValidator(_text_checker(name, max_bytes, empty_message)),
        Field(json_schema_extra={"minLength": 1, "maxLength": max_bytes, "pattern": r"\S"}),
    )


def check_namespace(value: str) -> str:
    if not value or len(value) > MAX_NAMESPACE_LENGTH:
        raise invalid_value(f"`namespace` must be 1..{MAX_NAMESPACE_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise invalid_value("`namespace` must not contain control characters")
    return value


def _default_namespace(value: object) -> object:
    return "default" if value is None else value


NamespaceName = Annotated[
    str,
    AfterValidator(check_namespace),
    Field(json_schema_extra={"minLength": 1, "maxLength": MAX_NAMESPACE_LENGTH, "pattern": r"^[^\u0000-\u001f\u007f]*$"}),
]
# An optional namespace: absent or null is "default", as upstream.
Namespace = Annotated[NamespaceName, BeforeValidator(_default_namespace), WithJsonSchema(
    {"anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_NAMESPACE_LENGTH, "pattern": r"^[^\u0000-\u001f\u007f]*$"},
               {"type": "null"}], "default": "default"}
)]


def _check_limit(value: int | None) -> int | None:
    if value is not None and value <= 0:
        raise invalid_value("`limit` must be a positive integer")
    return value


# Absent or null: the route's default; larger than the route's cap: the cap (upstream clamps, it does not refuse).
Limit = Annotated[int | None, AfterValidator(_check_limit), Field(json_schema_extra={"minimum": 1})]


def _check_vector(values: list[float]) -> list[float]:
    if len(values) != EMBEDDING_DIMENSIONS:
        raise invalid_value(f"`vector` must have {EMBEDDING_DIMENSIONS} dimensions, got {len(values)}")
    largest = 0.0
    for value in values:
        if not math.isfinite(value):
            raise invalid_value("`vector` must contain only finite numbers")
        largest = max(largest, abs(value))
    if largest > MAX_VECTOR_COMPONENT:
        raise invalid_value(f"`vector` components must be within ±{MAX_VECTOR_COMPONENT:g}")
    if largest < MIN_VECTOR_MAGNITUDE:
        raise invalid_value("`vector` must have a non-zero norm (cosine distance needs a direction)")
    return [float(value) for value in values]


Vector = Annotated[
    list[float],
    AfterValidator(_check_vector),
    Field(json_schema_extra={"minItems": EMBEDDING_DIMENSIONS, "maxItems": EMBEDDING_DIMENSIONS}),
]


def _decode_base64(name: str, max_bytes: int) -> Callable[[object], bytes]:
    def decode(value: object) -> bytes:
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "Input should be a valid string")
        if len(value) > (max_bytes * 4) // 3 + 8:
            raise invalid_value(f"`{name}` exceeds {max_bytes} bytes")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise invalid_value(f"`{name}` is not valid base64") from None
        if not data:
            raise invalid_value(f"`{name}` is empty")
        if len(data) > max_bytes:
            raise invalid_value(f"`{name}` exceeds {max_bytes} bytes")
        return data

    return decode


# Base64 text on the wire, the decoded bytes in the model.
EncryptedData = Annotated[
    bytes,
    BeforeValidator(_decode_base64("encrypted_data", MAX_ENCRYPTED_BYTES)),
    WithJsonSchema({"type": "string", "contentEncoding": "base64", "minLength": 4,
                    "description": "standard base64 of a Seal EncryptedObject (BCS)"}),
]


def _check_idempotency_key(value: str) -> str:
    if not _IDEMPOTENCY_KEY.match(value):
        raise invalid_value(f"`idempotency_key` must be 1..{MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters")
    return value


IdempotencyKey = Annotated[
    str, AfterValidator(_check_idempotency_key), Field(json_schema_extra={"pattern": r"^[\x21-\x7e]{1,128}$"})
]


def _check_tag(value: str) -> str:
    if not value or len(value) > MAX_TAG_LENGTH_CEILING:
        raise invalid_value(f"a tag must be 1..{MAX_TAG_LENGTH_CEILING} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise invalid_value("a tag must not contain control characters")
    return value


def _check_tags(values: list[str]) -> list[str]:
    if len(values) > MAX_TAGS_CEILING:
        raise invalid_value(f"at most {MAX_TAGS_CEILING} tags")
    return values


Tag = Annotated[
    str,
    AfterValidator(_check_tag),
    Field(json_schema_extra={"minLength": 1, "maxLength": MAX_TAG_LENGTH_CEILING, "pattern": r"^[^\u0000-\u001f\u007f]*$"}),
]
# Plaintext labels (the operator's database sees them); the settings' limits apply on top of these ceilings.
Tags = Annotated[list[Tag], AfterValidator(_check_tags), Field(json_schema_extra={"maxItems": MAX_TAGS_CEILING})]


def _check_ttl(value: int) -> int:
    if not 1 <= value <= MAX_TTL_SECONDS_CEILING:
        raise invalid_value(f"`ttl_seconds` must be within 1..{MAX_TTL_SECONDS_CEILING}")
    return value


TtlSeconds = Annotated[int, AfterValidator(_check_ttl), Field(json_schema_extra={"minimum": 1, "maximum": MAX_TTL_SECONDS_CEILING})]


def _check_memory_id(value: str) -> str:
    if not _JOB_ID.match(value):
        raise invalid_value(f"`memory_id` must be 1..{MAX_JOB_ID_LENGTH} characters of A-Z, a-z, 0-9, _ and -")
    return value


# A memory's id is the id of the remember job that wrote it (or of a manual remember).
MemoryId = Annotated[str, AfterValidator(_check_memory_id), Field(json_schema_extra={"pattern": r"^[A-Za-z0-9_-]{1,128}$"})]


def _check_occurred_at(value: str) -> str:
    if len(value) > MAX_OCCURRED_AT_LENGTH:
        raise invalid_value(f"`occurred_at` must be an RFC 3339 string of at most {MAX_OCCURRED_AT_LENGTH} characters")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_value("`occurred_at` must be RFC 3339") from None
    if parsed.tzinfo is None:
        raise invalid_value("`occurred_at` must carry a UTC offset")
    return value


OccurredAt = Annotated[
    str, AfterValidator(_check_occurred_at), Field(json_schema_extra={"format": "date-time", "maxLength": MAX_OCCURRED_AT_LENGTH})
]


def _check_job_ids(values: list[str]) -> list[str]:
    if not 1 <= len(values) <= MAX_BULK_ITEMS:
        raise invalid_value(f"`job_ids` must have 1..{MAX_BULK_ITEMS} items, got {len(values)}")
    return values


JobIds = Annotated[
    list[Annotated[str, Field(json_schema_extra={"maxLength": MAX_JOB_ID_LENGTH})]],
    AfterValidator(_check_job_ids),
    Field(json_schema_extra={"minItems": 1, "maxItems": MAX_BULK_ITEMS}),
]


def is_job_id(value: str) -> bool:
    return bool(_JOB_ID.match(value))


def query_integer(raw: str | None, name: str, *, minimum: int = 1) -> int | None:
    """A query-string integer: ASCII digits only, at most MAX_QUERY_INTEGER_DIGITS of them (400 otherwise)."""
    if raw is None:
        return None
    if not _ASCII_DIGITS.match(raw) or int(raw) < minimum:
        raise InvalidValue(f"`{name}` must be an integer of at most {MAX_QUERY_INTEGER_DIGITS} ASCII digits, at least {minimum}")
    return int(raw)


def check_query_text(raw: str | None, name: str, *, max_length: int) -> str | None:
    if raw is not None and len(raw) > max_length:
        raise InvalidValue(f"`{name}` is longer than {max_length} characters")
    return raw
