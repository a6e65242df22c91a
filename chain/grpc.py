"""``ChainReader`` over a full node's gRPC API (``sui.rpc.v2``), with pysui's generated stubs.

Services and calls: LedgerService ``GetObject``, ``BatchGetObjects``, ``GetTransaction``, ``GetEpoch``,
``GetServiceInfo``, ``ListEvents``; StateService ``ListOwnedObjects``, ``ListDynamicFields``;
TransactionExecutionService ``ExecuteTransaction``; SubscriptionService ``SubscribeEvents`` (a wake-up
signal for the indexer; events themselves always come from ``ListEvents`` with a resumable cursor, as
the service documentation prescribes).

Move values are read from ``Object.json``, the same renderer as GraphQL's ``MoveValue.json``
(``chain.move_json``). There is no "dynamic field by name" call: the field's object id is derived
(``chain.dynamic_fields``) and fetched like any object.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

import grpclib.client
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2

from chain import bcs, move_json
from chain.address import normalize_address
from chain.base58 import decode_digest
from chain.dynamic_fields import dynamic_field_id
from chain.errors import ChainProtocolError, ObjectNotFound, TransactionRejected
from chain.grpc_transport import (
    DEFAULT_GRPC_LIMITS,
    GrpcLimits,
    GrpcTarget,
    field_mask,
    open_channel,
    translated,
    unary,
    value_to_python,
)
from chain.key_server_records import KEY_SERVER_TYPE_SUFFIX, V1_FIELD_KEY, V2_FIELD_KEY, parse_key_server
from chain.reader import (
    GRPC_CURSOR_PREFIX,
    Account,
    AccountChangeEvent,
    AccountCreatedEvent,
    ChangedObject,
    DelegateKey,
    EventCursor,
    EventPage,
    EventT,
    ExecutedTransaction,
    KeyServerInfo,
    ObjectRef,
    OwnedBlob,
    account_change_event_type,
    blob_id_from_u256,
)

ItemT = TypeVar("ItemT")  # what one ListEvents frame is parsed into
PAGE_SIZE = 50
MAX_PAGES = 200  # 10 000 items: a bound on any paged scan, as the other backends
MAX_STREAM_FRAMES = 4 * PAGE_SIZE + 16  # ListEvents interleaves progress frames with items
SUI_COIN_TYPE = "0x2::coin::Coin<0x2::sui::SUI>"
METADATA_FIELD_NAME = bcs.byte_vector(b"metadata")
OBJECT_MASK = ("object_id", "version", "digest", "owner", "object_type", "json")
REFERENCE_MASK = ("object_id", "version", "digest")
ADDRESS_BYTES = 32


class GrpcChainReader:
    def __init__(self, url: str, *, limits: GrpcLimits = DEFAULT_GRPC_LIMITS) -> None:
        self._url = url
        self._target = GrpcTarget.from_url(url)
        self._limits = limits
        self._channel: grpclib.client.Channel | None = None

    def __repr__(self) -> str:
        return f"GrpcChainReader({self._url!r})"

    def _open(self) -> grpclib.client.Channel:
        # Created on first use, inside the event loop that will drive it (grpclib binds to that loop).
        if self._channel is None:
            self._channel = open_channel(self._target, self._limits)
        return self._channel

    @property
    def _ledger(self) -> v2.LedgerServiceStub:
        return v2.LedgerServiceStub(self._open(), timeout=self._limits.timeout_seconds)

    @property
    def _state(self) -> v2.StateServiceStub:
        return v2.StateServiceStub(self._open(), timeout=self._limits.timeout_seconds)

    async def aclose(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    # ---- objects ----------------------------------------------------------------------------------
    async def _object(self, object_id: str, mask: Sequence[str] = OBJECT_MASK) -> v2.Object | None:
        request = v2.GetObjectRequest(object_id=normalize_address(object_id), read_mask=field_mask(*mask))
        try:
            response = await unary(self._ledger.get_object(request), f"GetObject {object_id}")
        except ObjectNotFound:
            return None
        return response.object

    async def _objects(self, object_ids: Sequence[str], mask: Sequence[str] = OBJECT_MASK) -> list[v2.Object | None]:
        """``BatchGetObjects``: one entry per id, ``None`` where the node reports an error (not found)."""
        found: list[v2.Object | None] = []
        for start in range(0, len(object_ids), PAGE_SIZE):
            chunk = object_ids[start : start + PAGE_SIZE]
            request = v2.BatchGetObjectsRequest(
                requests=[v2.GetObjectRequest(object_id=object_id) for object_id in chunk], read_mask=field_mask(*mask)
            )
            response = await unary(self._ledger.batch_get_objects(request), "BatchGetObjects")
            if len(response.objects) != len(chunk):
                raise ChainProtocolError("BatchGetObjects answered a different number of objects")
            found.extend(None if result.error is not None else result.object for result in response.objects)
        return found

    async def get_account(self, account_id: str) -> Account | None:
        found = await self._object(account_id)
        if found is None or not _type_of(found).endswith("::account::MemWalAccount"):
            return None
        fields = move_json.fields_of(_json(found))
        owner = found.owner
        if owner is None or owner.kind != v2.OwnerOwnerKind.SHARED:
            raise ChainProtocolError("a MemWal account must be a shared object")
        keys = tuple(
            DelegateKey(
                public_key=move_json.as_bytes(move_json.field(key, "public_key"), max_length=32),
                sui_address=move_json.as_address(move_json.field(key, "sui_address")),
                label=move_json.as_string(move_json.field(key, "label")),
            )
            for key in map(move_json.fields_of, move_json.as_list(move_json.field(fields, "delegate_keys"), max_length=64))
        )
        return Account(
            account_id=move_json.as_address(found.object_id),
            owner=move_json.as_address(move_json.field(fields, "owner")),
            active=move_json.as_bool(fields.get("active", True)),  # missing counts as active, as upstream
            delegate_keys=keys,
            initial_shared_version=move_json.as_int(owner.version),
        )

    async def object_version(self, object_id: str) -> int | None:
        found = await self._object(object_id, ("object_id", "version"))
        return None if found is None else move_json.as_int(found.version)

    async def object_ref(self, object_id: str) -> ObjectRef:
        found = await self._object(object_id, REFERENCE_MASK)
        if found is None:
            raise ObjectNotFound(f"object {object_id} does not exist")
        return _reference(found)

    async def _field_values(self, parent_ids: Sequence[str], name_type: str, name_bcs: bytes) -> list[object | None]:
        """The Move value of one dynamic field on each parent (``None`` where the field does not exist)."""
        field_ids = [dynamic_field_id(parent, name_type, name_bcs) for parent in parent_ids]
        values: list[object | None] = []
        for found in await self._objects(field_ids, ("object_id", "json")):
            values.append(None if found is None else move_json.field(move_json.fields_of(_json(found)), "value"))
        return values

    # ---- registry scan ----------------------------------------------------------------------------
    async def iter_registry_accounts(self, registry_id: str) -> AsyncIterator[str]:
        registry = await self._object(registry_id)
        if registry is None:
            raise ObjectNotFound(f"registry {registry_id} does not exist")
        fields = move_json.fields_of(_json(registry))
        table_id = move_json.as_uid(move_json.field(move_json.fields_of(move_json.field(fields, "accounts")), "id"))
        page_token: bytes | None = None
        for _ in range(MAX_PAGES):
            request = v2.ListDynamicFieldsRequest(
                parent=table_id, page_size=PAGE_SIZE, page_token=page_token, read_mask=field_mask("value")
            )
            response = await unary(self._state.list_dynamic_fields(request), "ListDynamicFields")
            if len(response.dynamic_fields) > PAGE_SIZE:
                raise ChainProtocolError("ListDynamicFields returned more than a page")
            for entry in response.dynamic_fields:
                value = entry.value.value if entry.value is not None else None
                if value is None or len(value) != ADDRESS_BYTES:  # Table<address, ID>: the value is an ID
                    raise ChainProtocolError("registry entry value is not an object id")
                yield "0x" + value.hex()
            page_token = response.next_page_token
            if not page_token:
                return
        raise ChainProtocolError("registry scan exceeded the page cap")

    # ---- owned objects ----------------------------------------------------------------------------
    async def _owned(self, owner: str, object_type: str, mask: Sequence[str]) -> list[v2.Object]:
        objects: list[v2.Object] = []
        page_token: bytes | None = None
        for _ in range(MAX_PAGES):
            request = v2.ListOwnedObjectsRequest(
                owner=normalize_address(owner), page_size=PAGE_SIZE, page_token=page_token,
                read_mask=field_mask(*mask), object_type=object_type,
            )
            response = await unary(self._state.list_owned_objects(request), "ListOwnedObjects")
            if len(response.objects) > PAGE_SIZE:
                raise ChainProtocolError("ListOwnedObjects returned more than a page")
            objects.extend(response.objects)
            page_token = response.next_page_token
            if not page_token:
                return objects
        raise ChainProtocolError("owned-object scan exceeded the page cap")

    async def owned_blobs(self, owner: str, walrus_package_id: str) -> list[OwnedBlob]:
        found = await self._owned(owner, f"{walrus_package_id}::blob::Blob", ("object_id", "version", "json"))
        object_ids = [move_json.as_address(item.object_id) for item in found]
        metadata_values = await self._field_values(object_ids, "vector<u8>", METADATA_FIELD_NAME)
        blobs: list[tuple[int, OwnedBlob]] = []
        for item, object_id, metadata_value in zip(found, object_ids, metadata_values, strict=True):
            fields = move_json.fields_of(_json(item))
            blob_number = move_json.as_int(move_json.field(fields, "blob_id"), bits=256)
            metadata: dict[str, str] = {}
            if metadata_value is not None:
                metadata = move_json.as_string_map(move_json.field(move_json.fields_of(metadata_value), "metadata"))
            blobs.append((move_json.as_int(item.version), OwnedBlob(object_id, blob_id_from_u256(blob_number), metadata)))
        blobs.sort(key=lambda entry: entry[0], reverse=True)  # newest version first, as the other backends
        return [blob for _, blob in blobs]

    async def gas_coins(self, owner: str) -> list[ObjectRef]:
        return [_reference(item) for item in await self._owned(owner, SUI_COIN_TYPE, REFERENCE_MASK)]

    # ---- Seal key servers -------------------------------------------------------------------------
    async def key_server(self, object_id: str) -> KeyServerInfo:
        found = await self._object(object_id, ("object_id", "object_type"))
        if found is None:
            raise ObjectNotFound(f"key server {object_id} does not exist")
        if not _type_of(found).endswith(KEY_SERVER_TYPE_SUFFIX):
            raise ChainProtocolError(f"object {object_id} is not a Seal KeyServer")
        v1_record, v2_record = [
            (await self._field_values([object_id], "u64", bcs.u64(key)))[0] for key in (V1_FIELD_KEY, V2_FIELD_KEY)
        ]
        return parse_key_server(
            object_id,
            None if v1_record is None else move_json.fields_of(v1_record),
            None if v2_record is None else move_json.fields_of(v2_record),
        )

    # ---- chain info -------------------------------------------------------------------------------
    async def gas_price(self) -> int:
        request = v2.GetEpochRequest(read_mask=field_mask("epoch", "reference_gas_price"))
        response = await unary(self._ledger.get_epoch(request), "GetEpoch")
        if response.epoch is None:
            raise ChainProtocolError("GetEpoch returned no epoch")
        return move_json.as_int(response.epoch.reference_gas_price)

    async def chain_identifier(self) -> str:
        response = await unary(self._ledger.get_service_info(v2.GetServiceInfoRequest()), "GetServiceInfo")
        try:
            genesis = decode_digest(move_json.as_string(response.chain_id))
        except ValueError as exc:
            raise ChainProtocolError("GetServiceInfo chain_id is not a base58 digest") from exc
        return genesis[:4].hex()  # the form GraphQL and JSON-RPC print: the genesis digest's first 4 bytes

    # ---- events -----------------------------------------------------------------------------------
    async def account_created_events(
        self, package_id: str, cursor: EventCursor | None, limit: int
    ) -> EventPage[AccountCreatedEvent]:
        return await self._events(f"{package_id}::account::AccountCreated", cursor, limit, _account_created)

    async def account_change_events(
        self, package_id: str, kind: str, cursor: EventCursor | None, limit: int
    ) -> EventPage[AccountChangeEvent]:
        event_type = account_change_event_type(package_id, kind)
        return await self._events(
            event_type, cursor, limit, lambda event, resume: _account_change(kind, event, resume)
        )

    async def _events(
        self, event_type: str, cursor: EventCursor | None, limit: int, parse: Callable[[v2.Event, bytes], EventT]
    ) -> EventPage[EventT]:
        after: bytes | None = None
        if cursor is not None:
            after = _decode_cursor(cursor.grpc_cursor) if cursor.grpc_cursor else await self._cursor_of(event_type, cursor)
        events, more = await self._list_events(event_type, after, min(limit, PAGE_SIZE), parse)
        next_cursor = events[-1].cursor if events else cursor  # same rule as JSON-RPC's nextCursor
        return EventPage(tuple(events), next_cursor, more)

    async def _list_events(
        self, event_type: str, after: bytes | None, limit: int, parse: Callable[[v2.Event, bytes], ItemT]
    ) -> tuple[list[ItemT], bool]:
        request = v2.ListEventsRequest(
            filter=_event_type_filter(event_type),
            options=v2.QueryOptions(limit=limit, after=after, ordering=v2.Ordering.ASCENDING),
            read_mask=field_mask("json", "transaction_digest", "event_index", "event_type"),
        )
        events: list[ItemT] = []
        end_reason: v2.QueryEndReason | None = None
        async with translated("ListEvents"):
            frames = 0
            async for frame in self._ledger.list_events(request):
                frames += 1
                if frames > MAX_STREAM_FRAMES or len(events) > limit:
                    raise ChainProtocolError("ListEvents streamed more than it was asked for")
                if frame.event is not None:
                    if frame.watermark is None or not frame.watermark.cursor:
                        raise ChainProtocolError("ListEvents frame without a resume cursor")
                    events.append(parse(frame.event, frame.watermark.cursor))
                if frame.end is not None:
                    end_reason = frame.end.reason
                    break
        if end_reason is None:
            raise ChainProtocolError("ListEvents ended without a QueryEnd frame")
        # ITEM_LIMIT: the page filled up, so more may follow; LEDGER_TIP: caught up with the index.
        return events, end_reason == v2.QueryEndReason.ITEM_LIMIT

    async def _cursor_of(self, event_type: str, cursor: EventCursor) -> bytes:
        """Find the resume cursor of an event known only by (txDigest, eventSeq), e.g. one another backend stored."""
        after: bytes | None = None
        for _ in range(MAX_PAGES):
            found, more = await self._list_events(event_type, after, PAGE_SIZE, _event_cursor)
            for position in found:
                if (position.tx_digest, position.event_seq) == (cursor.tx_digest, cursor.event_seq):
                    return _decode_cursor(position.grpc_cursor)
            if not found or not more:
                break
            after = _decode_cursor(found[-1].grpc_cursor)
        raise ChainProtocolError("event cursor does not match any event of this type")

    async def account_created_notifications(self, package_id: str) -> AsyncIterator[None]:
        """Yield once per new ``AccountCreated`` event the node streams (``SubscribeEvents``); runs until cancelled.

        Only a wake-up signal: read the events with ``account_created_events`` and a stored cursor, so a
        gap between subscriptions (they start at the tip and cannot resume) loses nothing.
        """
        request = v2.SubscribeEventsRequest(
            filter=_event_type_filter(f"{package_id}::account::AccountCreated"), read_mask=field_mask("event_type")
        )
        stub = v2.SubscriptionServiceStub(self._open())  # no deadline: a subscription has no successful end
        async with translated("SubscribeEvents"):
            async for frame in stub.subscribe_events(request):
                if frame.event is not None:
                    yield None

    # ---- transactions -----------------------------------------------------------------------------
    async def execute_transaction(self, tx_bytes: bytes, signatures: list[str]) -> ExecutedTransaction:
        try:
            user_signatures = [
                v2.UserSignature(bcs=v2.Bcs(name="UserSignatureBytes", value=base64.b64decode(signature, validate=True)))
                for signature in signatures
            ]
        except (binascii.Error, ValueError) as exc:
            raise TransactionRejected("a signature is not base64") from exc
        request = v2.ExecuteTransactionRequest(
            transaction=v2.Transaction(bcs=v2.Bcs(name="TransactionData", value=bytes(tx_bytes))),
            signatures=user_signatures,
            read_mask=field_mask("digest", "effects"),
        )
        stub = v2.TransactionExecutionServiceStub(self._open(), timeout=self._limits.timeout_seconds)
        try:
            response = await unary(stub.execute_transaction(request), "ExecuteTransaction")
        except (ChainProtocolError, ObjectNotFound) as exc:
            raise TransactionRejected(str(exc)) from exc
        executed = response.transaction
        if executed is None or executed.effects is None:
            raise ChainProtocolError("ExecuteTransaction returned no effects")
        digest = move_json.as_string(executed.digest)
        status = executed.effects.status
        if status is None or not status.success:
            error = status.error.description if status is not None and status.error is not None else "unknown error"
            raise TransactionRejected(f"transaction {digest} failed: {str(error)[:500]}")
        return _executed(digest, executed.effects)

    async def transaction_indexed(self, digest: str) -> bool:
        request = v2.GetTransactionRequest(digest=digest, read_mask=field_mask("digest", "checkpoint"))
        try:
            response = await unary(self._ledger.get_transaction(request), f"GetTransaction {digest}")
        except ObjectNotFound:
            return False
        return response.transaction is not None and response.transaction.checkpoint is not None


def _type_of(found: v2.Object) -> str:
    return move_json.normalize_type(move_json.as_string(found.object_type))


def _json(found: v2.Object) -> object:
    if found.json is None:
        raise ChainProtocolError(f"object {found.object_id} came without its JSON rendering")
    return value_to_python(found.json)


def _reference(found: v2.Object) -> ObjectRef:
    return ObjectRef(
        move_json.as_address(found.object_id), move_json.as_int(found.version), move_json.as_string(found.digest)
    )


def _event_type_filter(event_type: str) -> v2.EventFilter:
    literal = v2.EventLiteral(negated=False, event_type=v2.EventTypeFilter(event_type=event_type))
    return v2.EventFilter(terms=[v2.EventTerm(literals=[literal])])


def _decode_cursor(text: str | None) -> bytes:
    try:
        return base64.b64decode(text or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ChainProtocolError("stored gRPC event cursor is not base64") from exc


def _event_cursor(event: v2.Event, resume_cursor: bytes) -> EventCursor:
    return EventCursor(
        tx_digest=move_json.as_string(event.transaction_digest),
        event_seq=move_json.as_int(event.event_index),
        page_cursor=GRPC_CURSOR_PREFIX + base64.b64encode(resume_cursor).decode("ascii"),
    )


def _account_created(event: v2.Event, resume_cursor: bytes) -> AccountCreatedEvent:
    parsed = move_json.fields_of(value_to_python(event.json))
    return AccountCreatedEvent(
        account_id=move_json.as_address(move_json.field(parsed, "account_id")),
        owner=move_json.as_address(move_json.field(parsed, "owner")),
        cursor=_event_cursor(event, resume_cursor),
    )


def _account_change(kind: str, event: v2.Event, resume_cursor: bytes) -> AccountChangeEvent:
    parsed = move_json.fields_of(value_to_python(event.json))
    account_id = move_json.as_address(move_json.field(parsed, "account_id"))
    return AccountChangeEvent(kind, account_id, _event_cursor(event, resume_cursor))


def _changed_reference(change: v2.ChangedObject) -> ObjectRef:
    return ObjectRef(
        move_json.as_address(change.object_id),
        move_json.as_int(change.output_version),
        move_json.as_string(change.output_digest),
    )


def _executed(digest: str, effects: v2.TransactionEffects) -> ExecutedTransaction:
    changed = []
    for change in effects.changed_objects:
        if change.output_state != v2.ChangedObjectOutputObjectState.OBJECT_WRITE:
            continue  # deleted, wrapped, packages, accumulators: nothing to use at a new version
        owner = change.output_owner
        address = None
        if owner is not None and owner.kind == v2.OwnerOwnerKind.ADDRESS:
            address = move_json.as_address(owner.address)
        created = change.id_operation == v2.ChangedObjectIdOperation.CREATED
        changed.append(ChangedObject(_changed_reference(change), address, created))
    if effects.gas_object is None:
        raise ChainProtocolError("transaction effects name no gas object")
    return ExecutedTransaction(digest, tuple(changed), _changed_reference(effects.gas_object), effects.epoch)
