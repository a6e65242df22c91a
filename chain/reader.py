"""The one interface to Sui: ``ChainReader`` and the values it returns.

Two backends implement it: ``chain.jsonrpc.JsonRpcChainReader`` (the calls upstream MemWal makes) and
``chain.graphql.GraphQLChainReader`` (Sui GraphQL, for networks whose JSON-RPC is switched off). Both
return the same frozen dataclasses, so callers never see a wire format; ``chain.backends`` picks one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

MAX_CURSOR_TEXT = 1024  # a stored event cursor is a few hundred bytes at most


@dataclass(frozen=True)
class DelegateKey:
    public_key: bytes
    sui_address: str
    label: str


@dataclass(frozen=True)
class Account:
    account_id: str
    owner: str
    active: bool
    delegate_keys: tuple[DelegateKey, ...]
    initial_shared_version: int

    def has_delegate(self, public_key: bytes) -> bool:
        return any(key.public_key == bytes(public_key) for key in self.delegate_keys)


@dataclass(frozen=True)
class OwnedBlob:
    object_id: str
    blob_id: str  # unpadded base64url of the 32-byte little-endian u256, as Walrus prints it
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventCursor:
    """Position after an event. ``page_cursor`` is the GraphQL backend's opaque cursor, if known."""

    tx_digest: str
    event_seq: int
    page_cursor: str | None = None

    def to_json(self) -> str:
        """``{"txDigest","eventSeq"}`` as upstream's indexer stores it (plus the GraphQL cursor if any)."""
        value: dict[str, str] = {"txDigest": self.tx_digest, "eventSeq": str(self.event_seq)}
        if self.page_cursor is not None:
            value["pageCursor"] = self.page_cursor
        return json.dumps(value, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> EventCursor:
        if len(text) > MAX_CURSOR_TEXT:
            raise ValueError("event cursor text is too long")
        try:
            value = json.loads(text)
            page_cursor = value.get("pageCursor")
            if page_cursor is not None and not isinstance(page_cursor, str):
                raise TypeError("pageCursor must be a string")
            return cls(str(value["txDigest"]), int(value["eventSeq"]), page_cursor)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an event cursor: {exc}") from exc


@dataclass(frozen=True)
class AccountCreatedEvent:
    account_id: str
    owner: str
    cursor: EventCursor


@dataclass(frozen=True)
class EventPage:
    events: tuple[AccountCreatedEvent, ...]
    next_cursor: EventCursor | None  # the cursor passed in when the page is empty, as on a real node
    has_next_page: bool


@dataclass(frozen=True)
class KeyServerInfo:
    object_id: str
    name: str
    url: str
    key_type: int  # 0 = BF-IBE over BLS12-381
    public_key: bytes  # 96-byte compressed G2 point


@dataclass(frozen=True)
class ObjectRef:
    object_id: str
    version: int
    digest: str  # base58


class ChainReader(Protocol):
    async def get_account(self, account_id: str) -> Account | None: ...

    def iter_registry_accounts(self, registry_id: str) -> AsyncIterator[str]: ...

    async def account_created_events(
        self, package_id: str, cursor: EventCursor | None, limit: int
    ) -> EventPage: ...

    async def object_version(self, object_id: str) -> int | None: ...

    async def owned_blobs(self, owner: str, walrus_package_id: str) -> list[OwnedBlob]: ...

    async def key_server(self, object_id: str) -> KeyServerInfo: ...

    async def gas_price(self) -> int: ...

    async def gas_coins(self, owner: str) -> list[ObjectRef]: ...

    async def object_ref(self, object_id: str) -> ObjectRef: ...

    async def execute_transaction(self, tx_bytes: bytes, signatures: list[str]) -> str: ...


def blob_id_from_u256(value: int) -> str:
    """Walrus' text blob id: unpadded base64url of the u256 as 32 little-endian bytes."""
    if not 0 <= value < 1 << 256:
        raise ValueError("blob id is not a u256")
    return base64.urlsafe_b64encode(value.to_bytes(32, "little")).rstrip(b"=").decode("ascii")


def blob_id_to_u256(blob_id: str) -> int:
    if len(blob_id) != 43:
        raise ValueError("a Walrus blob id is 43 base64url characters")
    raw = base64.urlsafe_b64decode(blob_id + "=")
    return int.from_bytes(raw, "little")

