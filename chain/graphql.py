"""``ChainReader`` over Sui GraphQL (``POST <url>`` with ``{query, variables}``).

Move values come from ``MoveValue.json``: u64/u256 are decimal strings, ``vector<u8>`` is base64, a
``UID`` is its ``"0x…"`` string, structs are plain objects (see ``chain.move_json``). Dynamic fields are
looked up by ``{type, bcs}`` with the name BCS-encoded, as the schema requires. Event cursors are the
connection's opaque edge cursors, carried in ``EventCursor.page_cursor``.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Mapping

import httpx

from chain import bcs, move_json
from chain import graphql_queries as queries
from chain.errors import ChainProtocolError, ObjectNotFound, TransactionRejected
from chain.http_transport import DEFAULT_TRANSPORT_LIMITS, TransportLimits, post_json
from chain.key_server_records import KEY_SERVER_TYPE_SUFFIX, V1_FIELD_KEY, V2_FIELD_KEY, parse_key_server
from chain.reader import (
    Account,
    AccountChangeEvent,
    AccountCreatedEvent,
    BlobChange,
    ChangedObject,
    DelegateKey,
    EventCursor,
    EventPage,
    EventT,
    ExecutedTransaction,
    KeyServerInfo,
    ObjectRef,
    OwnedBlob,
    OwnerBlobChanges,
    account_change_event_type,
    blob_id_from_u256,
)

MAX_PAGES = 200
MAX_CHANGE_PAGES = 20  # an owner's changes since the last look; past this, listing afresh is cheaper
SUI_COIN_TYPE = "0x2::coin::Coin<0x2::sui::SUI>"
METADATA_FIELD = {"type": "vector<u8>", "bcs": base64.b64encode(bcs.byte_vector(b"metadata")).decode("ascii")}
KEY_SERVER_V1_FIELD = {"type": "u64", "bcs": base64.b64encode(bcs.u64(V1_FIELD_KEY)).decode("ascii")}
KEY_SERVER_V2_FIELD = {"type": "u64", "bcs": base64.b64encode(bcs.u64(V2_FIELD_KEY)).decode("ascii")}


class GraphQLError(ChainProtocolError):
    """The GraphQL service answered with ``errors``."""


class GraphQLChainReader:
    def __init__(self, url: str, *, http: httpx.AsyncClient, limits: TransportLimits = DEFAULT_TRANSPORT_LIMITS) -> None:
        self._url = url
        self._http = http
        self._limits = limits

    def __repr__(self) -> str:
        return f"GraphQLChainReader({self._url!r})"

    async def aclose(self) -> None:
        """Nothing to close: the HTTP client belongs to the caller."""

    async def query(self, document: str, variables: Mapping[str, object] | None = None) -> Mapping[str, object]:
        answer = await post_json(self._http, self._url, {"query": document, "variables": dict(variables or {})}, self._limits)
        answer = _mapping(answer)
        errors = answer.get("errors")
        if errors:
            messages = [str(_mapping(error).get("message", ""))[:300] for error in move_json.as_list(errors)]
            raise GraphQLError("; ".join(messages) or "GraphQL error")
        return _mapping(answer.get("data"))

    async def _object(self, object_id: str) -> Mapping[str, object] | None:
        found = (await self.query(queries.OBJECT_QUERY, {"address": object_id})).get("object")
        return None if found is None else _mapping(found)

    async def get_account(self, account_id: str) -> Account | None:
        found = await self._object(account_id)
        if found is None or found.get("asMoveObject") is None:
            return None
        contents = _mapping(_mapping(found["asMoveObject"]).get("contents"))
        if not _type_repr(contents).endswith("::account::MemWalAccount"):
            return None
        fields = move_json.fields_of(contents.get("json"))
        keys = tuple(
            DelegateKey(
                public_key=move_json.as_bytes(move_json.field(key, "public_key"), max_length=32),
                sui_address=move_json.as_address(move_json.field(key, "sui_address")),
                label=move_json.as_string(move_json.field(key, "label")),
            )
            for key in map(move_json.fields_of, move_json.as_list(move_json.field(fields, "delegate_keys"), max_length=64))
        )
        owner = _mapping(found.get("owner"))
        if owner.get("__typename") != "Shared":
            raise ChainProtocolError("a MemWal account must be a shared object")
        return Account(
            account_id=move_json.as_address(found.get("address")),
            owner=move_json.as_address(move_json.field(fields, "owner")),
            active=move_json.as_bool(fields.get("active", True)),  # missing counts as active, as upstream
            delegate_keys=keys,
            initial_shared_version=move_json.as_int(owner.get("initialSharedVersion")),
        )

    async def iter_registry_accounts(self, registry_id: str) -> AsyncIterator[str]:
        registry = await self._object(registry_id)
        if registry is None or registry.get("asMoveObject") is None:
            raise ObjectNotFound(f"registry {registry_id} does not exist")
        fields = move_json.fields_of(_mapping(_mapping(registry["asMoveObject"]).get("contents")).get("json"))
        table_id = move_json.as_uid(move_json.field(move_json.fields_of(move_json.field(fields, "accounts")), "id"))
        after: str | None = None
        for _ in range(MAX_PAGES):
            data = await self.query(
                queries.DYNAMIC_FIELDS_QUERY, {"parent": table_id, "first": queries.PAGE_SIZE, "after": after}
            )
            connection = _mapping(_mapping(data.get("address")).get("dynamicFields"))
            for node in move_json.as_list(connection.get("nodes"), max_length=queries.PAGE_SIZE):
                yield move_json.as_address(_move_value_json(_mapping(node).get("value")))
            has_next, after = _page_info(connection)
            if not has_next:
                return
        raise ChainProtocolError("registry scan exceeded the page cap")

    async def account_created_events(
        self, package_id: str, cursor: EventCursor | None, limit: int
    ) -> EventPage[AccountCreatedEvent]:
        return await self._events(f"{package_id}::account::AccountCreated", cursor, limit, _account_created)

    async def account_change_events(
        self, package_id: str, kind: str, cursor: EventCursor | None, limit: int
    ) -> EventPage[AccountChangeEvent]:
        event_type = account_change_event_type(package_id, kind)
        return await self._events(
            event_type, cursor, limit, lambda edge: _account_change(kind, edge)
        )

    async def _events(
        self, event_type: str, cursor: EventCursor | None, limit: int, parse: Callable[[Mapping[str, object]], EventT]
    ) -> EventPage[EventT]:
        after = None
        if cursor is not None:
            after = cursor.graphql_cursor or await self._edge_cursor_of(event_type, cursor)
        data = await self.query(
            queries.EVENTS_QUERY, {"type": event_type, "first": min(limit, queries.PAGE_SIZE), "after": after}
        )
        connection = _mapping(data.get("events"))
        events = [parse(_mapping(edge)) for edge in move_json.as_list(connection.get("edges"))]
        has_next, _ = _page_info(connection)
        next_cursor = events[-1].cursor if events else cursor  # same rule as JSON-RPC's nextCursor
        return EventPage(tuple(events), next_cursor, has_next)

    async def _edge_cursor_of(self, event_type: str, cursor: EventCursor) -> str:
        """Find the opaque cursor of an event known only by (txDigest, eventSeq), e.g. one a JSON-RPC indexer stored."""
        after: str | None = None
        for _ in range(MAX_PAGES):
            data = await self.query(queries.EVENTS_QUERY, {"type": event_type, "first": queries.PAGE_SIZE, "after": after})
            connection = _mapping(data.get("events"))
            for edge in move_json.as_list(connection.get("edges")):
                found = _event_cursor(_mapping(edge))
                if (found.tx_digest, found.event_seq) == (cursor.tx_digest, cursor.event_seq):
                    return found.page_cursor or ""
            has_next, after = _page_info(connection)
            if not has_next:
                break
        raise ChainProtocolError("event cursor does not match any event of this type")

    async def object_version(self, object_id: str) -> int | None:
        found = await self._object(object_id)
        return None if found is None else move_json.as_int(found.get("version"))

    async def object_ref(self, object_id: str) -> ObjectRef:
        found = await self._object(object_id)
        if found is None:
            raise ObjectNotFound(f"object {object_id} does not exist")
        return _object_ref(found)

    async def _owned_objects(self, owner: str, type_name: str) -> list[Mapping[str, object]]:
        nodes: list[Mapping[str, object]] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            variables = {"owner": owner, "type": type_name, "first": queries.PAGE_SIZE, "after": after, "field": METADATA_FIELD}
            data = await self.query(queries.OWNED_OBJECTS_QUERY, variables)
            connection = _mapping(_mapping(data.get("address")).get("objects"))
            nodes.extend(_mapping(node) for node in move_json.as_list(connection.get("nodes"), max_length=queries.PAGE_SIZE))
            has_next, after = _page_info(connection)
            if not has_next:
                return nodes
        raise ChainProtocolError("owned-object scan exceeded the page cap")

    async def owned_blobs(self, owner: str, walrus_package_id: str) -> list[OwnedBlob]:
        blobs: list[tuple[int, OwnedBlob]] = []
        for node in await self._owned_objects(owner, f"{walrus_package_id}::blob::Blob"):
            blobs.append((move_json.as_int(node.get("version")), _owned_blob(node.get("address"), node)))
        blobs.sort(key=lambda item: item[0], reverse=True)  # newest version first
        return [blob for _, blob in blobs]

    async def latest_checkpoint(self) -> int:
        return _checkpoint_number(await self.query(queries.LATEST_CHECKPOINT_QUERY))

    async def owner_blob_changes(self, owner: str, walrus_package_id: str, after_checkpoint: int) -> OwnerBlobChanges:
        blob_type = move_json.normalize_type(f"{walrus_package_id}::blob::Blob")
        owner = move_json.as_address(owner)
        changes: list[BlobChange] = []
        after: str | None = None
        checkpoint: int | None = None
        for _ in range(MAX_CHANGE_PAGES):
            variables = {"owner": owner, "afterCheckpoint": after_checkpoint, "first": queries.PAGE_SIZE, "after": after,
                         "field": METADATA_FIELD}
            data = await self.query(queries.OWNER_CHANGES_QUERY, variables)
            if checkpoint is None:
                checkpoint = _checkpoint_number(data)  # page cursors keep later pages at the first page's checkpoint
            connection = _mapping(data.get("transactions"))
            for node in move_json.as_list(connection.get("nodes"), max_length=queries.PAGE_SIZE):
                effects = _mapping(_mapping(node).get("effects"))
                object_changes = _mapping(effects.get("objectChanges"))
                if _mapping(object_changes.get("pageInfo")).get("hasNextPage") is True:
                    return OwnerBlobChanges(checkpoint, tuple(changes), complete=False)
                for change in move_json.as_list(object_changes.get("nodes"), max_length=queries.MAX_CHANGED_OBJECTS):
                    found = _blob_change(_mapping(change), owner, blob_type)
                    if found is not None:
                        changes.append(found)
            has_next, after = _page_info(connection)
            if not has_next:
                return OwnerBlobChanges(checkpoint, tuple(changes), complete=True)
        assert checkpoint is not None
        return OwnerBlobChanges(checkpoint, tuple(changes), complete=False)

    async def key_server(self, object_id: str) -> KeyServerInfo:
        variables = {"address": object_id, "v1": KEY_SERVER_V1_FIELD, "v2": KEY_SERVER_V2_FIELD}
        data = await self.query(queries.KEY_SERVER_QUERY, variables)
        found = data.get("object")
        if found is None or _mapping(found).get("asMoveObject") is None:
            raise ObjectNotFound(f"key server {object_id} does not exist")
        move_object = _mapping(_mapping(found)["asMoveObject"])
        if not _type_repr(_mapping(move_object.get("contents"))).endswith(KEY_SERVER_TYPE_SUFFIX):
            raise ChainProtocolError(f"object {object_id} is not a Seal KeyServer")
        records = {}
        for alias in ("v1", "v2"):
            field_value = move_object.get(alias)
            if field_value is not None:
                records[alias] = move_json.fields_of(_move_value_json(_mapping(field_value).get("value")))
        return parse_key_server(object_id, records.get("v1"), records.get("v2"))

    async def gas_price(self) -> int:
        epoch = _mapping((await self.query(queries.GAS_PRICE_QUERY)).get("epoch"))
        return move_json.as_int(epoch.get("referenceGasPrice"))

    async def chain_identifier(self) -> str:
        return move_json.as_string((await self.query(queries.CHAIN_IDENTIFIER_QUERY)).get("chainIdentifier"))

    async def gas_coins(self, owner: str) -> list[ObjectRef]:
        return [_object_ref(node) for node in await self._owned_objects(owner, SUI_COIN_TYPE)]

    async def transaction_indexed(self, digest: str) -> bool:
        found = (await self.query(queries.TRANSACTION_QUERY, {"digest": digest})).get("transaction")
        if found is None:
            return False
        effects = _mapping(found).get("effects")
        return effects is not None and _mapping(effects).get("checkpoint") is not None

    async def execute_transaction(self, tx_bytes: bytes, signatures: list[str]) -> ExecutedTransaction:
        variables = {"transaction": base64.b64encode(tx_bytes).decode("ascii"), "signatures": list(signatures)}
        try:
            data = await self.query(queries.EXECUTE_MUTATION, variables)
        except GraphQLError as exc:
            raise TransactionRejected(str(exc)) from exc
        result = _mapping(data.get("executeTransaction"))
        if result.get("errors"):
            raise TransactionRejected("; ".join(str(error)[:300] for error in move_json.as_list(result["errors"])))
        effects = _mapping(result.get("effects"))
        digest = move_json.as_string(effects.get("digest"))
        if effects.get("status") != "SUCCESS":
            error = effects.get("executionError")
            message = _mapping(error).get("message") if error is not None else "unknown error"
            raise TransactionRejected(f"transaction {digest} failed: {str(message)[:500]}")
        return _executed(digest, effects)


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ChainProtocolError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _type_repr(contents: Mapping[str, object]) -> str:
    return move_json.normalize_type(move_json.as_string(_mapping(contents.get("type")).get("repr")))


def _move_value_json(value: object) -> object:
    """``DynamicField.value`` must be a ``MoveValue`` (a dynamic field, not a dynamic object field)."""
    value = _mapping(value)
    if value.get("__typename") != "MoveValue":
        raise ChainProtocolError("dynamic field value is not a MoveValue")
    return value.get("json")


def _page_info(connection: Mapping[str, object]) -> tuple[bool, str | None]:
    info = _mapping(connection.get("pageInfo"))
    end_cursor = info.get("endCursor")
    if end_cursor is not None and not isinstance(end_cursor, str):
        raise ChainProtocolError("endCursor is not a string")
    return move_json.as_bool(info.get("hasNextPage")), end_cursor


def _event_cursor(edge: Mapping[str, object]) -> EventCursor:
    node = _mapping(edge.get("node"))
    return EventCursor(
        tx_digest=move_json.as_string(_mapping(node.get("transaction")).get("digest")),
        event_seq=move_json.as_int(node.get("sequenceNumber")),
        page_cursor=move_json.as_string(edge.get("cursor")),
    )


def _event_fields(edge: Mapping[str, object]) -> Mapping[str, object]:
    return move_json.fields_of(_mapping(_mapping(edge.get("node")).get("contents")).get("json"))


def _account_created(edge: Mapping[str, object]) -> AccountCreatedEvent:
    parsed = _event_fields(edge)
    return AccountCreatedEvent(
        account_id=move_json.as_address(move_json.field(parsed, "account_id")),
        owner=move_json.as_address(move_json.field(parsed, "owner")),
        cursor=_event_cursor(edge),
    )


def _account_change(kind: str, edge: Mapping[str, object]) -> AccountChangeEvent:
    parsed = _event_fields(edge)
    return AccountChangeEvent(kind, move_json.as_address(move_json.field(parsed, "account_id")), _event_cursor(edge))


def _executed(digest: str, effects: Mapping[str, object]) -> ExecutedTransaction:
    gas = _mapping(_mapping(effects.get("gasEffects")).get("gasObject"))
    changes = _mapping(effects.get("objectChanges"))
    changed = []
    for node in move_json.as_list(changes.get("nodes"), max_length=queries.MAX_CHANGED_OBJECTS):
        change = _mapping(node)
        output = change.get("outputState")
        if output is None:
            continue  # deleted or wrapped: nothing to read at a new version
        output = _mapping(output)
        changed.append(ChangedObject(_object_ref(output), _address_owner(output), change.get("idCreated") is True))
    epoch = effects.get("epoch")
    epoch_id = None if epoch is None else move_json.as_int(_mapping(epoch).get("epochId"))
    return ExecutedTransaction(digest, tuple(changed), _object_ref(gas), epoch_id)


def _object_ref(node: Mapping[str, object]) -> ObjectRef:
    return ObjectRef(
        move_json.as_address(node.get("address")),
        move_json.as_int(node.get("version")),
        move_json.as_string(node.get("digest")),
    )


def _owned_blob(address: object, move_object: Mapping[str, object]) -> OwnedBlob:
    """A ``Blob`` from its MoveObject node: ``contents { json }`` and the ``metadata`` dynamic field, if any."""
    fields = move_json.fields_of(_mapping(move_object.get("contents")).get("json"))
    blob_number = move_json.as_int(move_json.field(fields, "blob_id"), bits=256)
    metadata: dict[str, str] = {}
    if move_object.get("dynamicField") is not None:
        value = move_json.fields_of(_move_value_json(_mapping(move_object["dynamicField"]).get("value")))
        metadata = move_json.as_string_map(move_json.field(value, "metadata"))
    return OwnedBlob(move_json.as_address(address), blob_id_from_u256(blob_number), metadata)


def _blob_change(change: Mapping[str, object], owner: str, blob_type: str) -> BlobChange | None:
    """The change as the owner's Blob set sees it; None for objects that never were a Blob."""
    object_id = move_json.as_address(change.get("address"))
    output = change.get("outputState")
    if output is None:
        return BlobChange(object_id, None)  # deleted or wrapped: whatever it was, it is gone
    move_object = _mapping(output).get("asMoveObject")
    if move_object is None:
        return None
    move_object = _mapping(move_object)
    if move_json.normalize_type(_type_repr(_mapping(move_object.get("contents")))) != blob_type:
        return None
    held_by_owner = _address_owner(_mapping(output)) == owner
    return BlobChange(object_id, _owned_blob(object_id, move_object) if held_by_owner else None)


def _address_owner(output: Mapping[str, object]) -> str | None:
    """The address that owns an object state (``owner { ... on AddressOwner }``); None for any other owner."""
    owner = output.get("owner")
    if owner is None or _mapping(owner).get("__typename") != "AddressOwner":
        return None
    return move_json.as_address(_mapping(_mapping(owner).get("address")).get("address"))


def _checkpoint_number(data: Mapping[str, object]) -> int:
    return move_json.as_int(_mapping(data.get("checkpoint")).get("sequenceNumber"))
