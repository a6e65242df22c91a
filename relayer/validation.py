"""Request-body validation: JSON objects in, typed values out, clear 4xx errors for client mistakes.

Statuses follow upstream's Axum extractors: malformed JSON → 400, missing field or wrong type → 422,
values out of range → 400. Unknown fields are ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import datetime
from typing import Any

from relayer.errors import FieldError, InvalidValue, MalformedBody, UnsupportedContentType

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
MAX_ENCRYPTED_BYTES = 1024 * 1024 + 4096
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")


def parse_json_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedContentType("Expected request with `Content-Type: application/json`")
    try:
        value = json.loads(body or b"null", parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise MalformedBody(f"Failed to parse the request body as JSON: {exc}") from None
    if not isinstance(value, dict):
        raise FieldError("Request body must be a JSON object")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def text_field(body: dict[str, Any], name: str, *, max_bytes: int, empty_message: str = "Text cannot be empty") -> str:
    value = body.get(name)
    if value is None:
        raise FieldError(f"missing field `{name}`")
    if not isinstance(value, str):
        raise FieldError(f"`{name}` must be a string")
    if not value.strip():
        raise InvalidValue(empty_message)
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise InvalidValue(f"`{name}` is {size} bytes; the limit is {max_bytes} bytes")
    return value


def namespace_field(body: dict[str, Any], *, required: bool = False) -> str:
    value = body.get("namespace")
    if value is None:
        if required:
            raise FieldError("missing field `namespace`")
        return "default"
    return check_namespace(value)


def check_namespace(value: Any) -> str:
    if not isinstance(value, str):
        raise FieldError("`namespace` must be a string")
    if not value or len(value) > MAX_NAMESPACE_LENGTH:
        raise InvalidValue(f"`namespace` must be 1..{MAX_NAMESPACE_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidValue("`namespace` must not contain control characters")
    return value


def limit_field(body: dict[str, Any], *, default: int, cap: int = MAX_LIMIT) -> int:
    value = body.get("limit", default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError("`limit` must be an integer")
    if value <= 0:
        raise InvalidValue("`limit` must be a positive integer")
    return min(value, cap)


def vector_field(body: dict[str, Any], name: str = "vector") -> list[float]:
    value = body.get(name)
    if value is None:
        raise FieldError(f"missing field `{name}`")
    if not isinstance(value, list):
        raise FieldError(f"`{name}` must be an array of numbers")
    if len(value) != EMBEDDING_DIMENSIONS:
        raise InvalidValue(f"`{name}` must have {EMBEDDING_DIMENSIONS} dimensions, got {len(value)}")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value):
        raise InvalidValue(f"`{name}` must contain only finite numbers")
    return [float(x) for x in value]


def base64_field(body: dict[str, Any], name: str, *, max_bytes: int) -> bytes:
    value = body.get(name)
    if value is None:
        raise FieldError(f"missing field `{name}`")
    if not isinstance(value, str):
        raise FieldError(f"`{name}` must be a base64 string")
    if len(value) > (max_bytes * 4) // 3 + 8:
        raise InvalidValue(f"`{name}` exceeds {max_bytes} bytes")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue(f"`{name}` is not valid base64") from None
    if not data:
        raise InvalidValue(f"`{name}` is empty")
    return data


def string_list_field(body: dict[str, Any], name: str, *, min_items: int, max_items: int) -> list[str]:
    value = body.get(name)
    if value is None:
        raise FieldError(f"missing field `{name}`")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FieldError(f"`{name}` must be an array of strings")
    if not min_items <= len(value) <= max_items:
        raise InvalidValue(f"`{name}` must have {min_items}..{max_items} items, got {len(value)}")
    return value


def is_job_id(value: str) -> bool:
    return bool(_JOB_ID.match(value))


def idempotency_key_field(body: dict[str, Any]) -> str | None:
    value = body.get("idempotency_key")
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError("`idempotency_key` must be a string")
    if not _IDEMPOTENCY_KEY.match(value):
        raise InvalidValue(f"`idempotency_key` must be 1..{MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters")
    return value


def occurred_at_field(body: dict[str, Any]) -> str | None:
    value = body.get("occurred_at")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise FieldError("`occurred_at` must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue("`occurred_at` must be RFC 3339") from None
    if parsed.tzinfo is None:
        raise InvalidValue("`occurred_at` must carry a UTC offset")
    return value
