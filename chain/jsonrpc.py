"""``ChainReader`` over Sui JSON-RPC 2.0, making the same calls upstream MemWal makes.

Methods used: ``sui_getObject``, ``sui_multiGetObjects``, ``suix_getDynamicFields``,
``suix_getDynamicFieldObject``, ``suix_queryEvents``, ``suix_getOwnedObjects``,
``suix_getReferenceGasPrice``, ``suix_getCoins``, ``sui_executeTransactionBlock`` and
``sui_getTransactionBlock``, ``sui_getChainIdentifier``. "Not found" answers arrive inside ``result`` (``{"error": {"code":
"notExists"}}``) and become ``None``. A full node executing with ``WaitForLocalExecution`` serves its
own writes at once, so ``transaction_indexed`` is a plain lookup.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import httpx

from chain import move_json
from chain.errors import ChainProtocolError, ObjectNotFound, TransactionRejected
from chain.http_transport import DEFAULT_TRANSPORT_LIMITS, TransportLimits, post_json
from chain.key_server_records import KEY_SERVER_TYPE_SUFFIX, V1_FIELD_KEY, V2_FIELD_KEY, parse_key_server
from chain.reader import (
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

PAGE_SIZE = 50  # the node's own cap
MAX_PAGES = 200  # 10 000 objects: a bound on any paged scan
METADATA_FIELD_NAME = list(b"metadata")
METADATA_CONCURRENCY = 5  # upstream's sidecar uses 5 for the same per-blob lookups
SUI_COIN_TYPE = "0x2::sui::SUI"
_NOT_FOUND_CODES = frozenset({"notExists", "deleted", "dynamicFieldNotFound"})


class JsonRpcError(ChainProtocolError):
    """A JSON-RPC ``error`` member: the node understood the request and refused it."""

    def __init__(self, code: object, message: str) -> None:
        super().__init__(f"JSON-RPC error {code}: {message}")
        self.code = code


class JsonRpcChainReader:
    def __init__(self, url: str, *, http: httpx.AsyncClient, limits: TransportLimits = DEFAULT_TRANSPORT_LIMITS) -> None:
        self._url = url
        self._http = http
        self._limits = limits
        self._request_ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"JsonRpcChainReader({self._url!r})"

    async def aclose(self) -> None:
        """Nothing to close: the HTTP client belongs to the caller."""

    async def call(self, method: str, params: list[object]) -> object:
        """One JSON-RPC call; returns ``result`` or raises ``JsonRpcError``."""
        request_id = next(self._request_ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        answer = await post_json(self._http, self._url, body, self._limits)
        if not isinstance(answer, Mapping):
            raise ChainProtocolError(f"{method}: answer is not a JSON object")
        if "error" in answer:
            error = answer["error"]
            if not isinstance(error, Mapping):
                raise ChainProtocolError(f"{method}: malformed error member")
            raise JsonRpcError(error.get("code"), str(error.get("message", ""))[:500])
        if "result" not in answer:
            raise ChainProtocolError(f"{method}: answer has neither result nor error")
        return answer["result"]

    async def _object(self, object_id: str, **options: bool) -> Mapping[str, object] | None:
        return _object_data(await self.call("sui_getObject", [object_id, options]))

    async def get_account(self, account_id: str) -> Account | None:
        data = await self._object(account_id, showContent=True, showOwner=True, showType=True)
        if data is None:
            return None
        if not _content_type(data).endswith("::account::MemWalAccount"):
            return None  # some other object: not an account, exactly as if it did not exist
        return _parse_account(move_json.as_address(data.get("objectId")), _content_fields(data), data.get("owner"))

    async def iter_registry_accounts(self, registry_id: str) -> AsyncIterator[str]:
        registry = await self._object(registry_id, showContent=True)
        if registry is None:
            raise ObjectNotFound(f"registry {registry_id} does not exist")
        registry_fields = _content_fields(registry)
        table_id = move_json.as_uid(move_json.field(move_json.fields_of(registry_fields["accounts"]), "id"))
        cursor: object = None
        for _ in range(MAX_PAGES):
            page = _page(await self.call("suix_getDynamicFields", [table_id, cursor, PAGE_SIZE]))
            field_ids = [move_json.as_address(_mapping(entry).get("objectId")) for entry in page.data]
            if field_ids:
                objects = await self.call("sui_multiGetObjects", [field_ids, {"showContent": True}])
                for item in move_json.as_list(objects, max_length=PAGE_SIZE):
                    data = _object_data(item)
                    if data is not None:
                        entry_fields = _content_fields(data)
                        yield move_json.as_address(move_json.field(entry_fields, "value"))
            if not page.has_next_page:
                return
            cursor = page.next_cursor
        raise ChainProtocolError("registry scan exceeded the page cap")

    async def account_created_events(
        self, package_id: str, cursor: EventCursor | None, limit: int
    ) -> EventPage[AccountCreatedEvent]:
        def parse(parsed: Mapping[str, object], event_id: EventCursor) -> AccountCreatedEvent:
            account_id = move_json.as_address(move_json.field(parsed, "account_id"))
            return AccountCreatedEvent(account_id, move_json.as_address(move_json.field(parsed, "owner")), event_id)

        return await self._events(f"{package_id}::account::AccountCreated", cursor, limit, parse)

    async def account_change_events(
        self, package_id: str, kind: str, cursor: EventCursor | None, limit: int
    ) -> EventPage[AccountChangeEvent]:
        event_type = account_change_event_type(package_id, kind)

        def parse(parsed: Mapping[str, object], event_id: EventCursor) -> AccountChangeEvent:
            return AccountChangeEvent(kind, move_json.as_address(move_json.field(parsed, "account_id")), event_id)

        return await self._events(event_type, cursor, limit, parse)

    async def _events(
        self, event_type: str, cursor: EventCursor | None, limit: int,
        parse: Callable[[Mapping[str, object], EventCursor], EventT],
    ) -> EventPage[EventT]:
        query = {"MoveEventType": event_type}
        wire_cursor = None if cursor is None else {"txDigest": cursor.tx_digest, "eventSeq": str(cursor.event_seq)}
        page = _page(await self.call("suix_queryEvents", [query, wire_cursor, min(limit, PAGE_SIZE), False]))
        events = []
        for raw in page.data:
            event = _mapping(raw)
            events.append(parse(move_json.fields_of(event.get("parsedJson")), _event_cursor(event.get("id"))))
        next_cursor = None if page.next_cursor is None else _event_cursor(page.next_cursor)
        return EventPage(tuple(events), next_cursor, bool(page.has_next_page))

    async def object_version(self, object_id: str) -> int | None:
        data = await self._object(object_id)
        return None if data is None else move_json.as_int(data.get("version"))

    async def object_ref(self, object_id: str) -> ObjectRef:
        data = await self._object(object_id)
        if data is None:
            raise ObjectNotFound(f"object {object_id} does not exist")
        return _object_ref(data)

    async def owned_blobs(self, owner: str, walrus_package_id: str) -> list[OwnedBlob]:
        query = {"filter": {"StructType": f"{walrus_package_id}::blob::Blob"}, "options": {"showContent": True}}
        candidates: list[tuple[int, str, int]] = []
        cursor: object = None
        for _ in range(MAX_PAGES):
            page = _page(await self.call("suix_getOwnedObjects", [owner, query, cursor, PAGE_SIZE]))
            for item in page.data:
                data = _object_data(item)
                if data is None:
                    continue
                fields = _content_fields(data)
                blob_number = move_json.as_int(move_json.field(fields, "blob_id"), bits=256)
                candidates.append((move_json.as_int(data.get("version")), move_json.as_address(data.get("objectId")), blob_number))
            if not page.has_next_page:
                break
            cursor = page.next_cursor
        else:
            raise ChainProtocolError("owned-object scan exceeded the page cap")
        limiter = asyncio.Semaphore(METADATA_CONCURRENCY)

        async def with_metadata(object_id: str, blob_number: int) -> OwnedBlob:
            async with limiter:
                metadata = await self._blob_metadata(object_id)
            return OwnedBlob(object_id, blob_id_from_u256(blob_number), metadata)

        candidates.sort(key=lambda item: item[0], reverse=True)  # newest version first
        return list(await asyncio.gather(*(with_metadata(oid, number) for _, oid, number in candidates)))

    async def _blob_metadata(self, blob_object_id: str) -> dict[str, str]:
        name = {"type": "vector<u8>", "value": METADATA_FIELD_NAME}
        data = _object_data(await self.call("suix_getDynamicFieldObject", [blob_object_id, name]))
        if data is None:
            return {}
        field_struct = _content_fields(data)
        metadata_struct = move_json.fields_of(move_json.field(field_struct, "value"))
        return move_json.as_string_map(move_json.field(metadata_struct, "metadata"))

    async def key_server(self, object_id: str) -> KeyServerInfo:
        data = await self._object(object_id, showContent=True, showType=True)
        if data is None:
            raise ObjectNotFound(f"key server {object_id} does not exist")
        if not _content_type(data).endswith(KEY_SERVER_TYPE_SUFFIX):
            raise ChainProtocolError(f"object {object_id} is not a Seal KeyServer")
        records = []
        for key in (V1_FIELD_KEY, V2_FIELD_KEY):
            name = {"type": "u64", "value": str(key)}
            field_data = _object_data(await self.call("suix_getDynamicFieldObject", [object_id, name]))
            records.append(
                None if field_data is None else move_json.fields_of(move_json.field(_content_fields(field_data), "value"))
            )
        return parse_key_server(object_id, records[0], records[1])

    async def gas_price(self) -> int:
        return move_json.as_int(await self.call("suix_getReferenceGasPrice", []))

    async def chain_identifier(self) -> str:
        return move_json.as_string(await self.call("sui_getChainIdentifier", []))

    async def gas_coins(self, owner: str) -> list[ObjectRef]:
        coins: list[ObjectRef] = []
        cursor: object = None
        for _ in range(MAX_PAGES):
            page = _page(await self.call("suix_getCoins", [owner, SUI_COIN_TYPE, cursor, PAGE_SIZE]))
            for raw in page.data:
                coin = _mapping(raw)
                coins.append(
                    ObjectRef(
                        move_json.as_address(coin.get("coinObjectId")),
                        move_json.as_int(coin.get("version")),
                        move_json.as_string(coin.get("digest")),
                    )
                )
            if not page.has_next_page:
                return coins
            cursor = page.next_cursor
        raise ChainProtocolError("coin scan exceeded the page cap")

    async def transaction_indexed(self, digest: str) -> bool:
        try:
            await self.call("sui_getTransactionBlock", [digest, {}])
        except JsonRpcError:
            return False  # a node answers an unknown digest with an error, not with an empty result
        return True

    async def execute_transaction(self, tx_bytes: bytes, signatures: list[str]) -> ExecutedTransaction:
        params: list[object] = [
            base64.b64encode(tx_bytes).decode("ascii"),
            list(signatures),
            {"showEffects": True},
            "WaitForLocalExecution",
        ]
        try:
            result = _mapping(await self.call("sui_executeTransactionBlock", params))
        except JsonRpcError as exc:
            raise TransactionRejected(str(exc)) from exc
        digest = move_json.as_string(result.get("digest"))
        effects = _mapping(result.get("effects"))
        status = _mapping(effects.get("status"))
        if status.get("status") != "success":
            raise TransactionRejected(f"transaction {digest} failed: {str(status.get('error'))[:500]}")
        return _executed(digest, effects)


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ChainProtocolError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _object_data(result: object) -> Mapping[str, object] | None:
    """``result.data`` of an object response, ``None`` when the node says it does not exist."""
    response = _mapping(result)
    error = response.get("error")
    if error is not None:
        code = _mapping(error).get("code")
        if code in _NOT_FOUND_CODES:
            return None
        raise ChainProtocolError(f"object lookup failed: {code}")
    return _mapping(response.get("data"))


def _content_fields(data: Mapping[str, object]) -> Mapping[str, object]:
    content = _mapping(data.get("content"))
    if content.get("dataType") != "moveObject":
        raise ChainProtocolError("object content is not a Move object")
    return _mapping(content.get("fields"))


def _content_type(data: Mapping[str, object]) -> str:
    return move_json.normalize_type(move_json.as_string(_mapping(data.get("content")).get("type")))


@dataclass(frozen=True)
class _Page:
    data: list[object]
    next_cursor: object
    has_next_page: bool


def _page(result: object) -> _Page:
    page = _mapping(result)
    return _Page(
        move_json.as_list(page.get("data"), max_length=PAGE_SIZE),
        page.get("nextCursor"),
        move_json.as_bool(page.get("hasNextPage")),
    )


def _event_cursor(value: object) -> EventCursor:
    cursor = _mapping(value)
    return EventCursor(move_json.as_string(cursor.get("txDigest")), move_json.as_int(cursor.get("eventSeq")))


def _object_ref(data: Mapping[str, object]) -> ObjectRef:
    return ObjectRef(
        move_json.as_address(data.get("objectId")),
        move_json.as_int(data.get("version")),
        move_json.as_string(data.get("digest")),
    )


def _parse_account(account_id: str, fields: Mapping[str, object], owner: object) -> Account:
    keys = []
    for raw_key in move_json.as_list(move_json.field(fields, "delegate_keys"), max_length=64):
        key = move_json.fields_of(raw_key)
        keys.append(
            DelegateKey(
                public_key=move_json.as_bytes(move_json.field(key, "public_key"), max_length=32),
                sui_address=move_json.as_address(move_json.field(key, "sui_address")),
                label=move_json.as_string(move_json.field(key, "label")),
            )
        )
    active = fields.get("active", True)  # upstream treats a missing flag as active
    return Account(
        account_id=account_id,
        owner=move_json.as_address(move_json.field(fields, "owner")),
        active=move_json.as_bool(active),
        delegate_keys=tuple(keys),
        initial_shared_version=_initial_shared_version(owner),
    )


def _initial_shared_version(owner: object) -> int:
    shared = _mapping(owner).get("Shared") if isinstance(owner, Mapping) else None
    if shared is None:
        raise ChainProtocolError("a MemWal account must be a shared object")
    return move_json.as_int(_mapping(shared).get("initial_shared_version"))


MAX_CHANGED_OBJECTS = 1024


def _executed(digest: str, effects: Mapping[str, object]) -> ExecutedTransaction:
    """``SuiTransactionBlockEffects``: ``created``/``mutated`` are ``{owner, reference}`` entries."""
    changed = []
    for kind in ("created", "mutated"):
        for raw in move_json.as_list(effects.get(kind, []), max_length=MAX_CHANGED_OBJECTS):
            entry = _mapping(raw)
            owner = entry.get("owner")
            address = _mapping(owner).get("AddressOwner") if isinstance(owner, Mapping) else None
            changed.append(
                ChangedObject(
                    _reference(entry.get("reference")),
                    None if address is None else move_json.as_address(address),
                    kind == "created",
                )
            )
    gas = _mapping(effects.get("gasObject"))
    epoch = effects.get("executedEpoch")
    return ExecutedTransaction(digest, tuple(changed), _reference(gas.get("reference")),
                               None if epoch is None else move_json.as_int(epoch))


def _reference(value: object) -> ObjectRef:
    reference = _mapping(value)
    return ObjectRef(
        move_json.as_address(reference.get("objectId")),
        move_json.as_int(reference.get("version")),
        move_json.as_string(reference.get("digest")),
    )
