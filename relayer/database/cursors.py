"""Opaque page cursors: compact JSON in unpadded base64url, safe to put in a query string as is."""

from __future__ import annotations

import base64
import binascii
import json

from relayer.database.errors import InvalidCursor


def encode_json_cursor(payload: dict[str, object]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_json_cursor(cursor: str) -> object:
    """The JSON value inside ``cursor``; ``InvalidCursor`` when it is not one (the caller checks its shape)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as error:
        raise InvalidCursor("malformed cursor") from error
