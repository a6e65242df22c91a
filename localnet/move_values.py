"""Typed Move values for the localnet Sui world, and their three external forms.

A value is one of: ``bool``; ``int`` (u8/u16/u32, rendered as a JSON number); ``U64``/``U256`` (rendered
as decimal strings); ``bytes`` (``vector<u8>``); ``str`` (``0x1::string::String``); ``Address`` (address
or ``ID``); ``Uid``; ``list`` (vector); ``None`` (empty ``Option``); ``Struct``; ``Variant`` (an enum value).

- ``to_jsonrpc``: JSON-RPC ``content.fields`` form (numbers array for bytes, ``{"type","fields"}`` structs,
  ``{"id": …}`` UIDs, ``{"type","variant","fields"}`` enums);
- ``to_graphql_json``: Sui GraphQL ``MoveValue.json`` form, which gRPC's ``Object.json`` shares (base64
  bytes, plain-object structs, UID as string, enums as ``{"@variant": name, …fields}``);
- ``to_storage`` / ``from_storage``: tagged JSON for the state file.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from chain import bcs


@dataclass(frozen=True)
class U64:
    value: int


@dataclass(frozen=True)
class U256:
    value: int


@dataclass(frozen=True)
class Address:
    value: str


@dataclass(frozen=True)
class Uid:
    value: str


@dataclass(frozen=True)
class Struct:
    """A Move struct. The typed readers raise ``TypeError`` when a field does not have the expected kind."""

    type: str
    fields: dict[str, MoveValue] = field(default_factory=dict)

    def struct(self, name: str) -> Struct:
        return as_struct(self.fields[name])

    def vector(self, name: str) -> list[MoveValue]:
        value = self.fields[name]
        if not isinstance(value, list):
            raise TypeError(f"{self.type}.{name} is not a vector")
        return value

    def number(self, name: str) -> int:
        """A ``U64``/``U256`` (or small integer) field's value."""
        value = self.fields[name]
        if isinstance(value, U64 | U256):
            return value.value
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError(f"{self.type}.{name} is not an integer")

    def address(self, name: str) -> str:
        """An ``address``/``ID`` or ``UID`` field's value."""
        value = self.fields[name]
        if not isinstance(value, Address | Uid):
            raise TypeError(f"{self.type}.{name} is not an address")
        return value.value


@dataclass(frozen=True)
class Variant:
    """A Move enum value: ``type`` is the enum's type, ``name`` the variant."""

    type: str
    name: str
    fields: dict[str, MoveValue] = field(default_factory=dict)


MoveValue = bool | int | U64 | U256 | bytes | str | Address | Uid | list["MoveValue"] | None | Struct | Variant


def as_struct(value: MoveValue) -> Struct:
    if not isinstance(value, Struct):
        raise TypeError(f"expected a Move struct, not {type(value).__name__}")
    return value


def to_jsonrpc(value: MoveValue) -> object:
    if isinstance(value, Struct):
        return {"type": value.type, "fields": jsonrpc_fields(value)}
    if isinstance(value, Variant):
        return {"type": value.type, "variant": value.name,
                "fields": {name: to_jsonrpc(item) for name, item in value.fields.items()}}
    if isinstance(value, (U64, U256)):
        return str(value.value)
    if isinstance(value, bytes):
        return list(value)
    if isinstance(value, Address):
        return value.value
    if isinstance(value, Uid):
        return {"id": value.value}
    if isinstance(value, list):
        return [to_jsonrpc(item) for item in value]
    return value


def jsonrpc_fields(value: Struct) -> dict[str, object]:
    return {name: to_jsonrpc(item) for name, item in value.fields.items()}


def to_graphql_json(value: MoveValue) -> object:
    if isinstance(value, Struct):
        return {name: to_graphql_json(item) for name, item in value.fields.items()}
    if isinstance(value, Variant):
        return {"@variant": value.name, **{name: to_graphql_json(item) for name, item in value.fields.items()}}
    if isinstance(value, (U64, U256)):
        return str(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (Address, Uid)):
        return value.value
    if isinstance(value, list):
        return [to_graphql_json(item) for item in value]
    return value


def name_bcs(value: MoveValue) -> bytes:
    """BCS of a dynamic-field name (the key types the world uses: address, vector<u8>, u64)."""
    if isinstance(value, Address):
        return bcs.address(value.value)
    if isinstance(value, bytes):
        return bcs.byte_vector(value)
    if isinstance(value, U64):
        return bcs.u64(value.value)
    if isinstance(value, str):
        return bcs.string(value)
    raise TypeError(f"unsupported dynamic-field name {value!r}")


def to_storage(value: MoveValue) -> object:
    if isinstance(value, Struct):
        return {"$struct": value.type, "fields": {name: to_storage(item) for name, item in value.fields.items()}}
    if isinstance(value, Variant):
        return {"$variant": value.type, "name": value.name,
                "fields": {name: to_storage(item) for name, item in value.fields.items()}}
    if isinstance(value, U64):
        return {"$u64": str(value.value)}
    if isinstance(value, U256):
        return {"$u256": str(value.value)}
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, Address):
        return {"$address": value.value}
    if isinstance(value, Uid):
        return {"$uid": value.value}
    if isinstance(value, list):
        return [to_storage(item) for item in value]
    return value


def from_storage(raw: object) -> MoveValue:
    if isinstance(raw, list):
        return [from_storage(item) for item in raw]
    if not isinstance(raw, dict):
        return raw  # type: ignore[return-value]
    if "$struct" in raw:
        return Struct(raw["$struct"], {name: from_storage(item) for name, item in raw["fields"].items()})
    if "$variant" in raw:
        return Variant(raw["$variant"], raw["name"], {name: from_storage(item) for name, item in raw["fields"].items()})
    if "$u64" in raw:
        return U64(int(raw["$u64"]))
    if "$u256" in raw:
        return U256(int(raw["$u256"]))
    if "$bytes" in raw:
        return bytes.fromhex(raw["$bytes"])
    if "$address" in raw:
        return Address(raw["$address"])
    if "$uid" in raw:
        return Uid(raw["$uid"])
    raise ValueError(f"unknown stored Move value {sorted(raw)}")
