"""The localnet's Sui gRPC server (``sui.rpc.v2``) over the same ``World``, with grpclib and pysui's stubs.

Served: LedgerService ``GetServiceInfo``, ``GetObject``, ``BatchGetObjects``, ``GetTransaction``,
``GetEpoch``, ``ListEvents``; StateService ``ListOwnedObjects``, ``ListDynamicFields``;
TransactionExecutionService ``ExecuteTransaction``; SubscriptionService ``SubscribeEvents``. Anything else
answers UNIMPLEMENTED, as grpclib does for unknown methods.

Like a full node: reads honour ``read_mask`` (top-level fields; the defaults are the node's), come from
the indexed state (``World.read_view``, so they lag execution by the world's indexing lag), page with
opaque tokens, and "not found" is ``NOT_FOUND``. ``Object.json`` is the GraphQL rendering of the Move
value (the node uses the same renderer). Stand-in limits: ``ListDynamicFields`` can BCS-encode values
of address/ID, bytes, strings and u64/u256 only; object BCS is never served.
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import Callable, Iterable
from typing import Any

from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream
from pysui.sui.sui_grpc.suimsgs.google import rpc
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2

from chain import bcs
from chain.address import normalize_address
from chain.base58 import b58encode
from chain.grpc_transport import DEFAULT_GRPC_LIMITS, CappedCodec, python_to_value
from chain.move_json import normalize_type
from localnet import move_values
from localnet.execution import TransactionError
from localnet.move_values import U64, U256, Address, Uid
from localnet.object_store import GENESIS_CHECKPOINT_DIGEST, ReadView, StoredEvent, StoredObject, StoredTransaction
from localnet.world import World

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000  # the node's cap; larger requests are coerced down, as the service documents
MAX_BATCH = 1000
SUBSCRIPTION_POLL_SECONDS = 0.05
DEFAULT_OBJECT_MASK = ("object_id", "version", "digest")
DEFAULT_EVENT_MASK = ("package_id", "module", "sender", "event_type", "json", "transaction_digest", "event_index")
_CURSOR_BYTES = 8


def _mask(request_mask: Any, default: Iterable[str]) -> frozenset[str]:
    """Top-level field names a read mask selects (``effects.status`` selects all of ``effects``)."""
    paths = list(request_mask.paths) if request_mask is not None and request_mask.paths else list(default)
    return frozenset(path.split(".", 1)[0] for path in paths)


def _owner(item: StoredObject) -> v2.Owner:
    if not isinstance(item.owner, dict):
        return v2.Owner(kind=v2.OwnerOwnerKind.IMMUTABLE)
    (kind, value), = item.owner.items()
    if kind == "Shared":
        return v2.Owner(kind=v2.OwnerOwnerKind.SHARED, version=value["initial_shared_version"])
    if kind == "ObjectOwner":
        return v2.Owner(kind=v2.OwnerOwnerKind.OBJECT, address=value)
    return v2.Owner(kind=v2.OwnerOwnerKind.ADDRESS, address=value)


def render_object(item: StoredObject, fields: frozenset[str]) -> v2.Object:
    rendered: dict[str, Any] = {
        "object_id": item.object_id, "version": item.version, "digest": item.digest, "owner": _owner(item),
        "object_type": item.type, "previous_transaction": item.previous_transaction,
        "json": None if item.contents is None else python_to_value(move_values.to_graphql_json(item.contents)),
    }
    if "bcs" in fields or "contents" in fields:
        raise GRPCError(Status.UNIMPLEMENTED, "the localnet does not serve object BCS")
    return v2.Object(**{name: value for name, value in rendered.items() if name in fields})


def _value_bcs(value: move_values.MoveValue) -> bytes:
    if isinstance(value, Address | Uid):
        return bcs.address(value.value)
    if isinstance(value, bytes):
        return bcs.byte_vector(value)
    if isinstance(value, str):
        return bcs.string(value)
    if isinstance(value, U64):
        return bcs.u64(value.value)
    if isinstance(value, U256):
        return bcs.u256(value.value)
    if isinstance(value, bool):
        return b"\x01" if value else b"\x00"
    raise GRPCError(Status.UNIMPLEMENTED, "the localnet cannot BCS-encode this dynamic field value")


def _page(items: list, key: Callable[[Any], str], page_size: int | None, token: bytes | None) -> tuple[list, bytes | None]:
    size = DEFAULT_PAGE_SIZE if not page_size else min(page_size, MAX_PAGE_SIZE)
    start = 0
    if token:
        keys = [key(item) for item in items]
        wanted = token.decode("utf-8", "replace")
        if wanted not in keys:
            raise GRPCError(Status.INVALID_ARGUMENT, "page_token does not match this listing")
        start = keys.index(wanted) + 1
    page = items[start : start + size]
    more = start + size < len(items)
    return page, key(page[-1]).encode() if more and page else None


def _event_matches(event: StoredEvent, event_filter: v2.EventFilter | None) -> bool:
    if event_filter is None:
        return True
    return any(all(_literal_matches(event, literal) for literal in term.literals) for term in event_filter.terms)


def _literal_matches(event: StoredEvent, literal: v2.EventLiteral) -> bool:
    if literal.event_type is not None:
        wanted = normalize_type(literal.event_type.event_type or "")
        actual = normalize_type(event.type)
        matched = actual == wanted or actual.split("<", 1)[0] == wanted or actual.startswith(wanted + "::")
    elif literal.sender is not None:
        matched = event.sender == normalize_address(literal.sender.address or "")
    else:
        raise GRPCError(Status.UNIMPLEMENTED, "the localnet filters events by type or sender only")
    return matched != literal.negated


def _event(event: StoredEvent, position_in_checkpoint: int, checkpoint: int | None, fields: frozenset[str]) -> v2.Event:
    rendered: dict[str, Any] = {
        "package_id": event.package_id, "module": event.module, "sender": event.sender, "event_type": event.type,
        "json": python_to_value(move_values.to_graphql_json(event.contents)), "checkpoint": checkpoint,
        "transaction_digest": event.tx_digest, "transaction_index": position_in_checkpoint, "event_index": event.event_seq,
    }
    return v2.Event(**{name: value for name, value in rendered.items() if name in fields})


def _cursor(position: int) -> bytes:
    return struct.pack(">Q", position)


def _position_after(cursor: bytes | None) -> int:
    if not cursor:
        return 0
    if len(cursor) != _CURSOR_BYTES:
        raise GRPCError(Status.INVALID_ARGUMENT, "malformed event cursor")
    return struct.unpack(">Q", cursor)[0] + 1


def _changed(world: World, change: dict) -> v2.ChangedObject | None:
    found = world.get(change["objectId"])
    if found is None or change["type"] == "published":
        return None
    created = change["type"] == "created"
    return v2.ChangedObject(
        object_id=found.object_id,
        input_state=v2.ChangedObjectInputObjectState.DOES_NOT_EXIST if created else v2.ChangedObjectInputObjectState.EXISTS,
        output_state=v2.ChangedObjectOutputObjectState.OBJECT_WRITE,
        output_version=found.version, output_digest=found.digest, output_owner=_owner(found),
        id_operation=v2.ChangedObjectIdOperation.CREATED if created else v2.ChangedObjectIdOperation.NONE,
        object_type=found.type,
    )


def _effects(world: World, done: StoredTransaction) -> v2.TransactionEffects:
    changed = [item for item in (_changed(world, change) for change in done.object_changes) if item is not None]
    gas = next((item for item in changed if item.object_id == done.gas_object), None)
    return v2.TransactionEffects(
        digest=done.digest, transaction_digest=done.digest, status=v2.ExecutionStatus(success=True),
        epoch=world.epoch, changed_objects=changed, gas_object=gas, lamport_version=world.last_version,
    )


class LocalnetSui:
    """The four services, as grpclib handler mappings over one ``World``."""

    def __init__(self, world: World) -> None:
        self.world = world

    def services(self) -> list[Any]:
        return [_Service(self, name, methods) for name, methods in _ROUTES.items()]

    # ---- LedgerService ----------------------------------------------------------------------
    async def get_service_info(self, request: v2.GetServiceInfoRequest) -> v2.GetServiceInfoResponse:
        view = self.world.read_view()
        return v2.GetServiceInfoResponse(
            chain_id=b58encode(GENESIS_CHECKPOINT_DIGEST), chain="localnet", epoch=self.world.epoch,
            checkpoint_height=view.indexed, lowest_available_checkpoint=0, server="memwal-enclave-localnet",
        )

    def _view_object(self, view: ReadView, object_id: str | None, fields: frozenset[str]) -> v2.Object:
        if not object_id:
            raise GRPCError(Status.INVALID_ARGUMENT, "object_id is required")
        found = view.get(object_id)
        if found is None:
            raise GRPCError(Status.NOT_FOUND, f"Object {object_id} not found")
        return render_object(found, fields)

    async def get_object(self, request: v2.GetObjectRequest) -> v2.GetObjectResponse:
        fields = _mask(request.read_mask, DEFAULT_OBJECT_MASK)
        return v2.GetObjectResponse(object=self._view_object(self.world.read_view(), request.object_id, fields))

    async def batch_get_objects(self, request: v2.BatchGetObjectsRequest) -> v2.BatchGetObjectsResponse:
        if len(request.requests) > MAX_BATCH:
            raise GRPCError(Status.INVALID_ARGUMENT, f"at most {MAX_BATCH} objects per batch")
        fields = _mask(request.read_mask, DEFAULT_OBJECT_MASK)
        view = self.world.read_view()
        results = []
        for one in request.requests:
            try:
                results.append(v2.GetObjectResult(object=self._view_object(view, one.object_id, fields)))
            except GRPCError as error:
                results.append(v2.GetObjectResult(error=rpc.Status(code=error.status.value, message=error.message or "")))
        return v2.BatchGetObjectsResponse(objects=results)

    async def get_transaction(self, request: v2.GetTransactionRequest) -> v2.GetTransactionResponse:
        view = self.world.read_view()
        digest = request.digest or ""
        checkpoint = view.checkpoint_of(digest)
        if checkpoint is None:
            raise GRPCError(Status.NOT_FOUND, f"Transaction {digest} not found")
        fields = _mask(request.read_mask, ("digest",))
        rendered: dict[str, Any] = {"digest": digest, "checkpoint": checkpoint}
        return v2.GetTransactionResponse(
            transaction=v2.ExecutedTransaction(**{name: value for name, value in rendered.items() if name in fields})
        )

    async def get_epoch(self, request: v2.GetEpochRequest) -> v2.GetEpochResponse:
        if request.epoch is not None and request.epoch != self.world.epoch:
            raise GRPCError(Status.NOT_FOUND, f"Epoch {request.epoch} not found")
        fields = _mask(request.read_mask, ("epoch", "reference_gas_price"))
        rendered: dict[str, Any] = {"epoch": self.world.epoch, "reference_gas_price": self.world.reference_gas_price}
        return v2.GetEpochResponse(epoch=v2.Epoch(**{name: value for name, value in rendered.items() if name in fields}))

    async def list_events(self, request: v2.ListEventsRequest, stream: Stream) -> None:
        options = request.options or v2.QueryOptions()
        if options.ordering == v2.Ordering.DESCENDING or options.before:
            raise GRPCError(Status.UNIMPLEMENTED, "the localnet lists events in ascending order only")
        limit = min(options.limit or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        fields = _mask(request.read_mask, DEFAULT_EVENT_MASK)
        view = self.world.read_view()
        visible = view.events  # a prefix of the world's event list, in ledger order
        start = _position_after(options.after)
        sent = 0
        for position in range(start, len(visible)):
            event = visible[position]
            if not _event_matches(event, request.filter):
                continue
            sent += 1
            frame = v2.ListEventsResponse(
                event=_event(event, 0, view.checkpoint_of(event.tx_digest), fields),
                watermark=v2.Watermark(cursor=_cursor(position), checkpoint=view.checkpoint_of(event.tx_digest)),
            )
            if sent == limit:  # ITEM_LIMIT: the final frame carries the final item
                frame.end = v2.QueryEnd(reason=v2.QueryEndReason.ITEM_LIMIT)
                await stream.send_message(frame)
                return
            await stream.send_message(frame)
        tip = v2.Watermark(cursor=_cursor(len(visible) - 1) if visible else None, checkpoint=view.indexed)
        await stream.send_message(v2.ListEventsResponse(watermark=tip, end=v2.QueryEnd(reason=v2.QueryEndReason.LEDGER_TIP)))

    # ---- StateService -----------------------------------------------------------------------
    async def list_owned_objects(self, request: v2.ListOwnedObjectsRequest) -> v2.ListOwnedObjectsResponse:
        if not request.owner:
            raise GRPCError(Status.INVALID_ARGUMENT, "owner is required")
        fields = _mask(request.read_mask, ("object_id", "version", "object_type"))
        items = sorted(self.world.read_view().owned_by(request.owner, request.object_type or None),
                       key=lambda item: item.object_id)
        page, token = _page(items, lambda item: item.object_id, request.page_size, request.page_token)
        return v2.ListOwnedObjectsResponse(objects=[render_object(item, fields) for item in page], next_page_token=token)

    async def list_dynamic_fields(self, request: v2.ListDynamicFieldsRequest) -> v2.ListDynamicFieldsResponse:
        if not request.parent:
            raise GRPCError(Status.INVALID_ARGUMENT, "parent is required")
        fields = _mask(request.read_mask, ("parent", "field_id"))
        items = sorted(self.world.read_view().fields_of(request.parent), key=lambda item: item.object_id)
        page, token = _page(items, lambda item: item.object_id, request.page_size, request.page_token)
        rendered = []
        for item in page:
            contents = item.struct
            value_type = item.type[len("0x2::dynamic_field::Field<") : -1].split(", ", 1)[1]
            entry: dict[str, Any] = {
                "kind": v2.DynamicFieldDynamicFieldKind.FIELD, "parent": normalize_address(request.parent),
                "field_id": item.object_id, "value_type": value_type,
                "name": v2.Bcs(name=item.name_type, value=move_values.name_bcs(contents.fields["name"])),
            }
            if "value" in fields:
                entry["value"] = v2.Bcs(name=value_type, value=_value_bcs(contents.fields["value"]))
            rendered.append(v2.DynamicField(**{name: value for name, value in entry.items() if name in fields}))
        return v2.ListDynamicFieldsResponse(dynamic_fields=rendered, next_page_token=token)

    # ---- TransactionExecutionService ----------------------------------------------------------
    async def execute_transaction(self, request: v2.ExecuteTransactionRequest) -> v2.ExecuteTransactionResponse:
        if request.transaction is None or request.transaction.bcs is None or not request.transaction.bcs.value:
            raise GRPCError(Status.INVALID_ARGUMENT, "transaction.bcs is required")
        signatures = []
        for signature in request.signatures:
            if signature.bcs is None or not signature.bcs.value:
                raise GRPCError(Status.INVALID_ARGUMENT, "the localnet takes signatures as BCS bytes only")
            signatures.append(base64.b64encode(signature.bcs.value).decode("ascii"))
        try:
            done = self.world.apply_transaction(request.transaction.bcs.value, signatures)
        except TransactionError as exc:
            raise GRPCError(Status.INVALID_ARGUMENT, str(exc)[:500]) from None
        fields = _mask(request.read_mask, ("digest", "effects"))
        with self.world.lock:
            rendered: dict[str, Any] = {"digest": done.digest, "effects": _effects(self.world, done)}
        return v2.ExecuteTransactionResponse(
            transaction=v2.ExecutedTransaction(**{name: value for name, value in rendered.items() if name in fields})
        )

    # ---- SubscriptionService ----------------------------------------------------------------
    async def subscribe_events(self, request: v2.SubscribeEventsRequest, stream: Stream) -> None:
        fields = _mask(request.read_mask, DEFAULT_EVENT_MASK)
        position = len(self.world.read_view().events)  # subscriptions start at the tip
        await stream.send_message(v2.SubscribeEventsResponse(watermark=v2.Watermark(cursor=_cursor(position))))
        while True:
            view = self.world.read_view()
            visible = view.events
            for index in range(position, len(visible)):
                event = visible[index]
                if _event_matches(event, request.filter):
                    await stream.send_message(v2.SubscribeEventsResponse(
                        event=_event(event, 0, view.checkpoint_of(event.tx_digest), fields),
                        watermark=v2.Watermark(cursor=_cursor(index))))
            position = max(position, len(visible))
            await asyncio.sleep(SUBSCRIPTION_POLL_SECONDS)


# service name → method name → (handler attribute, cardinality, request type, response type)
_ROUTES: dict[str, dict[str, tuple[str, Cardinality, type, type]]] = {
    "LedgerService": {
        "GetServiceInfo": ("get_service_info", Cardinality.UNARY_UNARY, v2.GetServiceInfoRequest, v2.GetServiceInfoResponse),
        "GetObject": ("get_object", Cardinality.UNARY_UNARY, v2.GetObjectRequest, v2.GetObjectResponse),
        "BatchGetObjects": ("batch_get_objects", Cardinality.UNARY_UNARY, v2.BatchGetObjectsRequest, v2.BatchGetObjectsResponse),
        "GetTransaction": ("get_transaction", Cardinality.UNARY_UNARY, v2.GetTransactionRequest, v2.GetTransactionResponse),
        "GetEpoch": ("get_epoch", Cardinality.UNARY_UNARY, v2.GetEpochRequest, v2.GetEpochResponse),
        "ListEvents": ("list_events", Cardinality.UNARY_STREAM, v2.ListEventsRequest, v2.ListEventsResponse),
    },
    "StateService": {
        "ListOwnedObjects": ("list_owned_objects", Cardinality.UNARY_UNARY, v2.ListOwnedObjectsRequest, v2.ListOwnedObjectsResponse),
        "ListDynamicFields": ("list_dynamic_fields", Cardinality.UNARY_UNARY, v2.ListDynamicFieldsRequest, v2.ListDynamicFieldsResponse),
    },
    "TransactionExecutionService": {
        "ExecuteTransaction": ("execute_transaction", Cardinality.UNARY_UNARY, v2.ExecuteTransactionRequest, v2.ExecuteTransactionResponse),
    },
    "SubscriptionService": {
        "SubscribeEvents": ("subscribe_events", Cardinality.UNARY_STREAM, v2.SubscribeEventsRequest, v2.SubscribeEventsResponse),
    },
}


class _Service:
    """One ``sui.rpc.v2`` service for grpclib: ``__mapping__`` → route → handler."""

    def __init__(self, backend: LocalnetSui, name: str, methods: dict[str, tuple[str, Cardinality, type, type]]) -> None:
        self._backend = backend
        self._name = name
        self._methods = methods

    def __mapping__(self) -> dict[str, Handler]:
        return {
            f"/sui.rpc.v2.{self._name}/{method}": Handler(self._handler(attribute, cardinality), cardinality, request, response)
            for method, (attribute, cardinality, request, response) in self._methods.items()
        }

    def _handler(self, attribute: str, cardinality: Cardinality) -> Callable[[Stream], Any]:
        implementation = getattr(self._backend, attribute)

        async def handle(stream: Stream) -> None:
            request = await stream.recv_message()
            if cardinality is Cardinality.UNARY_STREAM:
                await implementation(request, stream)
            else:
                await stream.send_message(await implementation(request))

        return handle


def build_sui_grpc_server(world: World) -> Server:
    """A grpclib server for ``world`` (start it with ``await server.start(sock=…)``)."""
    return Server(LocalnetSui(world).services(), codec=CappedCodec(DEFAULT_GRPC_LIMITS.max_message_bytes),
                  status_details_codec=None)
