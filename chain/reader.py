"""The one interface to Sui: ``ChainReader`` and the values it returns.

Three backends implement it: ``chain.graphql.GraphQLChainReader`` (Sui GraphQL, the default),
``chain.grpc.GrpcChainReader`` (a full node's ``sui.rpc.v2`` gRPC API) and
``chain.jsonrpc.JsonRpcChainReader`` (the JSON-RPC calls upstream MemWal made, for providers that still
serve them). All return the same frozen dataclasses, so callers never see a wire format;
``chain.backends`` picks one.

Reads may lag execution on GraphQL and gRPC (an indexer sits behind them). ``execute_transaction``
therefore returns the effects (new versions of every changed object, the gas coin included), and
``transaction_indexed`` lets ``chain.consistency`` wait until a dependent read will see a transaction.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, runtime_checkable

MAX_CURSOR_TEXT = 1024  # a stored event cursor is a few hundred bytes at most
GRPC_CURSOR_PREFIX = "grpc:"  # gRPC page cursors are tagged; GraphQL's stay untagged (stored before gRPC existed)


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
    """Position after an event. ``page_cursor`` is the opaque cursor of the backend that read it, if any:
    GraphQL's as is, gRPC's as ``grpc:`` + base64. A backend ignores another's and finds the event by
    ``(tx_digest, event_seq)`` instead, so an indexer can switch protocols without losing its place."""

    tx_digest: str
    event_seq: int
    page_cursor: str | None = None

    @property
    def graphql_cursor(self) -> str | None:
        cursor = self.page_cursor
        return cursor if cursor and not cursor.startswith(GRPC_CURSOR_PREFIX) else None

    @property
    def grpc_cursor(self) -> str | None:
        cursor = self.page_cursor
        return cursor[len(GRPC_CURSOR_PREFIX) :] if cursor and cursor.startswith(GRPC_CURSOR_PREFIX) else None

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


# ``memwal::account`` events that take authority away from a delegate key: the relayer's account cache drops
# the account they name (relayer.account_cache). ``AccountReactivated`` and ``DelegateKeyAdded`` only grant.
ACCOUNT_CHANGE_EVENTS = ("DelegateKeyRemoved", "AccountDeactivated")


@dataclass(frozen=True)
class AccountChangeEvent:
    """A ``DelegateKeyRemoved`` or ``AccountDeactivated`` event: which account changed, and where it sits."""

    kind: str  # one of ACCOUNT_CHANGE_EVENTS
    account_id: str
    cursor: EventCursor


EventT = TypeVar("EventT", AccountCreatedEvent, AccountChangeEvent)


def account_change_event_type(package_id: str, kind: str) -> str:
    """``<package>::account::<kind>``; ``ValueError`` unless ``kind`` is one of ``ACCOUNT_CHANGE_EVENTS``."""
    if kind not in ACCOUNT_CHANGE_EVENTS:
        raise ValueError(f"not an account change event: {kind!r}")
    return f"{package_id}::account::{kind}"


@dataclass(frozen=True)
class EventPage(Generic[EventT]):
    events: tuple[EventT, ...]
    next_cursor: EventCursor | None  # the cursor passed in when the page is empty, as on a real node
    has_next_page: bool


@dataclass(frozen=True)
class IndependentServer:
    """A key server run by one operator at ``url`` (``KeyServerV1``, or ``KeyServerV2`` ``Independent``)."""

    url: str


@dataclass(frozen=True)
class PartialKeyServer:
    """One committee member: its share's public key and where the committee's aggregator reaches it."""

    name: str
    url: str
    partial_public_key: bytes  # 96-byte compressed G2 point, g2^share
    party_id: int  # Shamir x-coordinate is party_id + 1


@dataclass(frozen=True)
class CommitteeServer:
    """``KeyServerV2`` ``Committee``: t-of-n members behind one aggregator (its URL is not on chain)."""

    version: int
    threshold: int
    members: tuple[PartialKeyServer, ...]


@dataclass(frozen=True)
class KeyServerInfo:
    """A Seal ``KeyServer`` as its newest on-chain record describes it (V2 when present, else V1)."""

    object_id: str
    name: str
    key_type: int  # 0 = BF-IBE over BLS12-381
    public_key: bytes  # 96-byte compressed G2 point
    server_type: IndependentServer | CommitteeServer
    record_version: int = 1  # 1 = KeyServerV1, 2 = KeyServerV2

    @property
    def url(self) -> str | None:
        """The independent server's URL; ``None`` for a committee (clients use its aggregator)."""
        return self.server_type.url if isinstance(self.server_type, IndependentServer) else None


@dataclass(frozen=True)
class ObjectRef:
    object_id: str
    version: int
    digest: str  # base58


@dataclass(frozen=True)
class ChangedObject:
    """An object a transaction created or mutated, at its new version (``owner`` is an address or ``None``)."""

    reference: ObjectRef
    owner: str | None
    created: bool


@dataclass(frozen=True)
class ExecutedTransaction:
    """A successful transaction's effects: what a dependent transaction needs without reading again."""

    digest: str
    changed: tuple[ChangedObject, ...]
    gas_object: ObjectRef  # the (smashed) gas coin at its new version
    epoch: int | None = None  # the epoch it executed in (gas prices change per epoch); None if not reported

    def reference_of(self, object_id: str) -> ObjectRef | None:
        for item in self.changed:
            if item.reference.object_id == object_id:
                return item.reference
        return None


class ChainReader(Protocol):
    async def get_account(self, account_id: str) -> Account | None: ...

    def iter_registry_accounts(self, registry_id: str) -> AsyncIterator[str]: ...

    async def account_created_events(
        self, package_id: str, cursor: EventCursor | None, limit: int
    ) -> EventPage[AccountCreatedEvent]: ...

    async def account_change_events(
        self, package_id: str, kind: str, cursor: EventCursor | None, limit: int
    ) -> EventPage[AccountChangeEvent]:
        """``<package>::account::<kind>`` events after ``cursor``, ``kind`` one of ``ACCOUNT_CHANGE_EVENTS``."""
        ...

    async def object_version(self, object_id: str) -> int | None: ...

    async def owned_blobs(self, owner: str, walrus_package_id: str) -> list[OwnedBlob]: ...

    async def key_server(self, object_id: str) -> KeyServerInfo: ...

    async def gas_price(self) -> int: ...

    async def chain_identifier(self) -> str:
        """The network's id: the first 4 bytes of its genesis checkpoint digest, hex (as GraphQL prints it)."""
        ...

    async def gas_coins(self, owner: str) -> list[ObjectRef]: ...

    async def object_ref(self, object_id: str) -> ObjectRef: ...

    async def execute_transaction(self, tx_bytes: bytes, signatures: list[str]) -> ExecutedTransaction: ...

    async def transaction_indexed(self, digest: str) -> bool:
        """Whether this backend's reads already reflect the transaction (``chain.consistency`` polls it)."""
        ...

    async def aclose(self) -> None:
        """Release connections the reader owns (the gRPC channel); HTTP clients belong to the caller."""
        ...


@runtime_checkable
class EventNotifier(Protocol):
    """A backend that can push "new events" (gRPC ``SubscribeEvents``); the others are polled."""

    def account_created_notifications(self, package_id: str) -> AsyncIterator[None]: ...


@dataclass(frozen=True)
class BlobChange:
    """One object a transaction touched that is, or was, one of the owner's Blobs."""

    object_id: str
    blob: OwnedBlob | None  # its state after the transaction; None: no longer the owner's Blob (deleted, wrapped, sent)


@dataclass(frozen=True)
class OwnerBlobChanges:
    """What changed among an owner's Blob objects after a checkpoint, in execution order."""

    checkpoint: int  # the answer is consistent as of this checkpoint: ask for changes after it next time
    changes: tuple[BlobChange, ...]
    complete: bool  # False: more changed than one answer lists (a page cap): list the owner's Blobs afresh


@runtime_checkable
class OwnerChangeFeed(Protocol):
    """A backend that can list an owner's Blob changes since a checkpoint (GraphQL ``transactions`` filtered
    by ``affectedAddress`` and ``afterCheckpoint``); callers of the others list every owned Blob instead."""

    async def latest_checkpoint(self) -> int: ...

    async def owner_blob_changes(self, owner: str, walrus_package_id: str, after_checkpoint: int) -> OwnerBlobChanges: ...


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

