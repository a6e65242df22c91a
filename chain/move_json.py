"""Reading Move values out of the two JSON renderings Sui nodes produce.

JSON-RPC (``content.fields`` / ``parsedJson``): u64/u128/u256 are decimal strings, ``vector<u8>`` is an
array of numbers, nested structs are ``{"type", "fields"}``, a ``UID`` is ``{"id": "0x…"}`` and a
``VecMap`` is ``{"fields": {"contents": [{"fields": {"key", "value"}}]}}``.

GraphQL (``MoveValue.json``) and gRPC (``Object.json``, the same renderer in sui-types):
u64/u128/u256 are decimal strings, ``vector<u8>`` is a base64 string, structs are plain objects, a
``UID`` is the ``"0x…"`` string itself, a ``VecMap`` is ``{"contents": [{"key", "value"}]}`` and an
enum is ``{"@variant": name, <fields>}`` (JSON-RPC: ``{"type", "variant", "fields"}``).

The helpers accept both, so each backend only has to find the value, not decode it. Every helper raises
``ChainProtocolError`` on a shape it does not expect.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from chain.address import normalize_address
from chain.errors import ChainProtocolError

MAX_BYTE_VECTOR = 64 * 1024  # the largest vector<u8> we read is a 96-byte key-server key
MAX_MAP_ENTRIES = 1024


def fields_of(value: object) -> Mapping[str, object]:
    """The field map of a struct, with or without the JSON-RPC ``{"type", "fields"}`` wrapper."""
    if isinstance(value, Mapping):
        inner = value.get("fields")
        if isinstance(inner, Mapping) and "type" in value:
            return inner
        return value
    raise ChainProtocolError(f"expected a Move struct, got {type(value).__name__}")


def field(struct: Mapping[str, object], name: str) -> object:
    if name not in struct:
        raise ChainProtocolError(f"Move struct has no field {name!r}")
    return struct[name]


def as_int(value: object, *, bits: int = 64) -> int:
    """u8…u256 from a JSON number or a decimal string."""
    if isinstance(value, bool):
        raise ChainProtocolError("expected an integer, got a bool")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isdigit() and len(value) <= 80:
        number = int(value)
    else:
        raise ChainProtocolError(f"expected an unsigned integer, got {value!r:.40}")
    if not 0 <= number < 1 << bits:
        raise ChainProtocolError(f"integer does not fit in u{bits}")
    return number


def as_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ChainProtocolError(f"expected a bool, got {value!r:.40}")
    return value


def as_string(value: object) -> str:
    if not isinstance(value, str):
        raise ChainProtocolError(f"expected a string, got {type(value).__name__}")
    return value


def as_address(value: object) -> str:
    try:
        return normalize_address(value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ChainProtocolError(f"expected a Sui address, got {value!r:.80}") from exc


def as_uid(value: object) -> str:
    """A ``UID``: ``{"id": "0x…"}`` (JSON-RPC) or ``"0x…"`` (GraphQL)."""
    if isinstance(value, Mapping):
        return as_address(value.get("id"))
    return as_address(value)


def as_bytes(value: object, *, max_length: int = MAX_BYTE_VECTOR) -> bytes:
    """``vector<u8>``: an array of numbers (JSON-RPC) or a base64 string (GraphQL)."""
    if isinstance(value, list):
        if len(value) > max_length:
            raise ChainProtocolError("byte vector exceeds the size cap")
        if not all(isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 256 for item in value):
            raise ChainProtocolError("byte vector has an element outside 0..255")
        return bytes(value)
    if isinstance(value, str):
        if len(value) > (max_length * 4) // 3 + 4:
            raise ChainProtocolError("byte vector exceeds the size cap")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ChainProtocolError("byte vector is not valid base64") from exc
    raise ChainProtocolError(f"expected a byte vector, got {type(value).__name__}")


def as_list(value: object, *, max_length: int = MAX_MAP_ENTRIES) -> list[object]:
    if not isinstance(value, list):
        raise ChainProtocolError(f"expected an array, got {type(value).__name__}")
    if len(value) > max_length:
        raise ChainProtocolError("array exceeds the size cap")
    return value


def as_string_map(value: object) -> dict[str, str]:
    """``VecMap<String, String>`` in either rendering → dict (later keys win, as in insert_or_update)."""
    contents = as_list(field(fields_of(value), "contents"))
    result: dict[str, str] = {}
    for entry in contents:
        entry_fields = fields_of(entry)
        result[as_string(field(entry_fields, "key"))] = as_string(field(entry_fields, "value"))
    return result


def variant_of(value: object) -> tuple[str, Mapping[str, object]]:
    """A Move enum value in either rendering → (variant name, its fields)."""
    if not isinstance(value, Mapping):
        raise ChainProtocolError(f"expected a Move enum, got {type(value).__name__}")
    if "@variant" in value:
        name = as_string(value["@variant"])
        return name, {key: item for key, item in value.items() if key != "@variant"}
    if "variant" in value:
        fields = value.get("fields", {})
        if not isinstance(fields, Mapping):
            raise ChainProtocolError("enum fields must be an object")
        return as_string(value["variant"]), fields
    raise ChainProtocolError("Move enum value has no variant name")


def normalize_type(type_name: str) -> str:
    """Pad every address in a Move type string, so ``0x2::a::B`` and ``0x0…02::a::B`` compare equal."""
    out: list[str] = []
    for token in _split_type_tokens(type_name):
        if token.startswith("0x") and len(token) <= 66:
            try:
                token = normalize_address(token)
            except ValueError:
                pass
        out.append(token)
    return "".join(out)


def _split_type_tokens(type_name: str) -> list[str]:
    tokens: list[str] = []
    current = ""
    for character in type_name:
        if character in ":<>, ":
            if current:
                tokens.append(current)
                current = ""
            tokens.append(character)
        else:
            current += character
    if current:
        tokens.append(current)
    return tokens
