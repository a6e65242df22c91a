"""Strict CBOR decoding for attestation documents.

cbor2 decodes, but on its own it silently ignores trailing bytes, turns tags
into Python objects (a bignum tag becomes an ``int``), and accepts floats and
``undefined``. Nitro documents use none of that, so a small structural scan
runs first and admits only the subset the NSM emits:

* unsigned/negative integers, byte strings, text strings, arrays, maps
  (definite or indefinite length: 2026 NSMs send an indefinite outer map);
* the simple values false, true and null;
* no tags, except where the caller allows one at the top (COSE tag 18);
* no indefinite-length strings, no floats, nothing after the single item.

Duplicate map keys are then refused by cbor2 (``allow_duplicate_keys=False``).
"""

from __future__ import annotations

from typing import Any

import cbor2

from .errors import DecodeError

MAX_NESTING_DEPTH = 8

_SIMPLE_FALSE, _SIMPLE_TRUE, _SIMPLE_NULL = 20, 21, 22
_BREAK = 0xFF


def loads(data: bytes, *, max_size: int, allowed_top_tag: int | None = None) -> Any:
    """Decode exactly one CBOR item from ``data`` under the strict subset above."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("CBOR input must be bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise DecodeError(f"CBOR input is {len(data)} bytes, more than the {max_size} allowed")
    if not data:
        raise DecodeError("CBOR input is empty")
    offset = 0
    if allowed_top_tag is not None and data[0] >> 5 == 6:
        tag, offset = _read_head_argument(data, 0)
        if tag != allowed_top_tag:
            raise DecodeError(f"CBOR tag {tag} is not allowed here")
    end = _scan_item(data, offset, depth=0)
    if end != len(data):
        raise DecodeError(f"{len(data) - end} trailing bytes after the CBOR item")
    try:
        # Decode past the (already checked) top tag, so the item is not frozen into a CBORTag.
        return cbor2.loads(data[offset:], allow_duplicate_keys=False, max_depth=MAX_NESTING_DEPTH + 2)
    except cbor2.CBORDecodeError as error:
        raise DecodeError(f"invalid CBOR: {error}") from None


def _read_head_argument(data: bytes, offset: int) -> tuple[int, int]:
    """Return (argument, offset after the head) for the head at ``offset``."""
    if offset >= len(data):
        raise DecodeError("CBOR input is truncated")
    additional = data[offset] & 0x1F
    offset += 1
    if additional < 24:
        return additional, offset
    if additional > 27:
        raise DecodeError(f"CBOR additional information {additional} is not allowed here")
    width = 1 << (additional - 24)
    if offset + width > len(data):
        raise DecodeError("CBOR input is truncated")
    return int.from_bytes(data[offset : offset + width], "big"), offset + width


def _scan_item(data: bytes, offset: int, *, depth: int) -> int:
    """Check one item starting at ``offset`` and return the offset just after it."""
    if depth > MAX_NESTING_DEPTH:
        raise DecodeError("CBOR nesting is too deep")
    if offset >= len(data):
        raise DecodeError("CBOR input is truncated")
    major = data[offset] >> 5
    additional = data[offset] & 0x1F
    if additional == 31 and major in (4, 5):
        return _scan_indefinite_container(data, offset + 1, major, depth)
    if major == 7:
        if additional in (_SIMPLE_FALSE, _SIMPLE_TRUE, _SIMPLE_NULL):
            return offset + 1
        raise DecodeError("CBOR floats, undefined and other simple values are not allowed")
    if major == 6:
        raise DecodeError("CBOR tags are not allowed inside an attestation document")
    argument, offset = _read_head_argument(data, offset)
    if major in (0, 1):
        return offset
    if major in (2, 3):
        if argument > len(data) - offset:
            raise DecodeError("CBOR string runs past the end of the input")
        return offset + argument
    items = argument * 2 if major == 5 else argument
    if items > len(data) - offset:  # every item needs at least one byte
        raise DecodeError("CBOR container is longer than the input")
    for _ in range(items):
        offset = _scan_item(data, offset, depth=depth + 1)
    return offset


def _scan_indefinite_container(data: bytes, offset: int, major: int, depth: int) -> int:
    count = 0
    while True:
        if offset >= len(data):
            raise DecodeError("indefinite-length CBOR container has no break byte")
        if data[offset] == _BREAK:
            break
        offset = _scan_item(data, offset, depth=depth + 1)
        count += 1
    if major == 5 and count % 2:
        raise DecodeError("indefinite-length CBOR map has a key without a value")
    return offset + 1
