"""The localnet's Sui JSON-RPC 2.0 server (``POST /``) plus admin routes for the localnet CLI.

JSON-RPC methods: ``sui_getObject``, ``sui_multiGetObjects``, ``suix_getDynamicFields``,
``suix_getDynamicFieldObject``, ``suix_queryEvents`` (``MoveEventType``/``Sender``/``Transaction``),
``suix_getOwnedObjects``, ``suix_queryTransactionBlocks`` (``ToAddress``/``FromAddress``),
``suix_getReferenceGasPrice``, ``suix_getCoins``, ``sui_executeTransactionBlock``, ``sui_getTransactionBlock``,
``sui_getChainIdentifier``. A full node answers its own writes at once, so JSON-RPC reads are never
lagged (``World.read_view`` is for GraphQL and gRPC). Renderings follow a
real node: u64 as strings, ``vector<u8>`` as number arrays, "not found" inside ``result``, pages capped
at 50, ``nextCursor`` = last item (or the cursor passed in when the page is empty).

The ``/_localnet/`` admin routes (``localnet.sui_admin``) are mounted here too, for compatibility; the
runner also serves them on their own port so they stay reachable with JSON-RPC switched off.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chain.address import normalize_address
from localnet import sui_rendering as render
from localnet.execution import TransactionError
from localnet.json_body import read_json
from localnet.object_store import CHAIN_IDENTIFIER
from localnet.sui_admin import admin_routes
from localnet.world import World

PAGE_SIZE = 50
_Item = TypeVar("_Item")
_Key = TypeVar("_Key")


class InvalidParams(Exception):
    """-32602: the parameters do not have the shape the method expects."""


def _error(request_id: object, code: int, message: str) -> JSONResponse:
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


def build_sui_jsonrpc_app(world: World) -> Starlette:
    methods = JsonRpcMethods(world)

    async def rpc(request: Request) -> JSONResponse:
        try:
            envelope = await read_json(request)
        except ValueError as exc:
            return _error(None, -32700, f"parse error: {exc}")
        if not isinstance(envelope, dict) or envelope.get("jsonrpc") != "2.0" or not isinstance(envelope.get("method"), str):
            return _error(envelope.get("id") if isinstance(envelope, dict) else None, -32600, "invalid request")
        request_id = envelope.get("id")
        if envelope["method"] not in methods.NAMES:
            return _error(request_id, -32601, f"method not found: {envelope['method'][:100]}")
        handler = getattr(methods, envelope["method"])
        params = envelope.get("params", [])
        if not isinstance(params, list):
            return _error(request_id, -32602, "params must be an array")
        try:
            result = handler(*params)
        except (InvalidParams, TypeError, ValueError, KeyError) as exc:
            return _error(request_id, -32602, f"invalid params: {exc}")
        except TransactionError as exc:
            return _error(request_id, -32002, f"Transaction execution failed: {exc}")
        return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": result})

    return Starlette(routes=[Route("/", rpc, methods=["POST"]), *admin_routes(world)])


def _page_limit(limit: object) -> int:
    if limit is None:
        return PAGE_SIZE
    if not isinstance(limit, int) or limit <= 0:
        raise InvalidParams("limit must be a positive integer")
    return min(limit, PAGE_SIZE)


def paginate(items: list[_Item], key: Callable[[_Item], _Key], cursor: _Key | None, limit: object) -> tuple[list[_Item], _Key | None, bool]:
    """Items after ``cursor`` (a key), at most ``limit``; ``nextCursor`` per Sui's rule."""
    start = 0
    if cursor is not None:
        keys = [key(item) for item in items]
        if cursor not in keys:
            raise InvalidParams("cursor does not match any item")
        start = keys.index(cursor) + 1
    size = _page_limit(limit)
    page = items[start : start + size]
    next_cursor = key(page[-1]) if page else cursor
    return page, next_cursor, start + size < len(items)


class JsonRpcMethods:
    NAMES = frozenset({
        "sui_getObject", "sui_multiGetObjects", "suix_getDynamicFields", "suix_getDynamicFieldObject",
        "suix_queryEvents", "suix_getOwnedObjects", "suix_queryTransactionBlocks", "suix_getReferenceGasPrice",
        "suix_getCoins", "sui_executeTransactionBlock", "sui_getTransactionBlock", "sui_getChainIdentifier",
    })

    def __init__(self, world: World) -> None:
        self.world = world

    def sui_getObject(self, object_id: str, options: dict | None = None) -> dict:
        return render.object_response(self.world.get(object_id), object_id, options or {})

    def sui_multiGetObjects(self, object_ids: list, options: dict | None = None) -> list:
        if not isinstance(object_ids, list) or len(object_ids) > PAGE_SIZE:
            raise InvalidParams(f"at most {PAGE_SIZE} object ids")
        return [self.sui_getObject(object_id, options) for object_id in object_ids]

    def suix_getDynamicFields(self, parent_id: str, cursor: object = None, limit: object = None) -> dict:
        fields = self.world.fields_of(normalize_address(parent_id))
        page, next_cursor, has_next = paginate(fields, lambda item: item.object_id, cursor, limit)
        return {"data": [render.dynamic_field_info(item) for item in page], "nextCursor": next_cursor, "hasNextPage": has_next}

    def suix_getDynamicFieldObject(self, parent_id: str, name: dict) -> dict:
        if not isinstance(name, dict) or not isinstance(name.get("type"), str):
            raise InvalidParams("name must be {type, value}")
        found = self.world.find_field(normalize_address(parent_id), name["type"], render.name_bcs_from_json(name))
        if found is None:
            return {"error": {"code": "dynamicFieldNotFound", "parent_object_id": normalize_address(parent_id)}}
        return render.object_response(found, found.object_id, {"showContent": True, "showType": True, "showOwner": True})

    def suix_queryEvents(self, query: dict, cursor: object = None, limit: object = None, descending: bool = False) -> dict:
        with self.world.lock:
            events = [event for event in self.world.events if render.event_matches(event, query)]
        if descending:
            events.reverse()
        if cursor is not None and not isinstance(cursor, dict):
            raise InvalidParams("cursor must be {txDigest, eventSeq}")
        wanted = None if cursor is None else (cursor.get("txDigest"), str(cursor.get("eventSeq")))
        page, next_key, has_next = paginate(events, lambda event: (event.tx_digest, str(event.event_seq)), wanted, limit)
        next_cursor = None if next_key is None else {"txDigest": next_key[0], "eventSeq": next_key[1]}
        return {"data": [render.event(event) for event in page], "nextCursor": next_cursor, "hasNextPage": has_next}

    def suix_getOwnedObjects(self, owner: str, query: dict | None = None, cursor: object = None, limit: object = None) -> dict:
        query = query or {}
        struct_type = (query.get("filter") or {}).get("StructType")
        items = self.world.owned_by(owner, struct_type)
        page, next_cursor, has_next = paginate(items, lambda item: item.object_id, cursor, limit)
        options = query.get("options") or {}
        return {"data": [render.object_response(item, item.object_id, options) for item in page],
                "nextCursor": next_cursor, "hasNextPage": has_next}

    def suix_queryTransactionBlocks(self, query: dict, cursor: object = None, limit: object = None, descending: bool = False) -> dict:
        query_filter = query.get("filter") or {}
        with self.world.lock:
            transactions = list(self.world.transactions)
        if "ToAddress" in query_filter:
            address = normalize_address(query_filter["ToAddress"])
            transactions = [tx for tx in transactions if address in tx.recipients]
        elif "FromAddress" in query_filter:
            address = normalize_address(query_filter["FromAddress"])
            transactions = [tx for tx in transactions if tx.sender == address]
        elif query_filter:
            raise InvalidParams(f"unsupported transaction filter {sorted(query_filter)}")
        if descending:
            transactions.reverse()
        page, next_cursor, has_next = paginate(transactions, lambda tx: tx.digest, cursor, limit)
        options = query.get("options") or {}
        return {"data": [render.transaction(tx, options) for tx in page], "nextCursor": next_cursor, "hasNextPage": has_next}

    def suix_getReferenceGasPrice(self) -> str:
        return str(self.world.reference_gas_price)

    def suix_getCoins(self, owner: str, coin_type: str | None = None, cursor: object = None, limit: object = None) -> dict:
        wanted = f"0x2::coin::Coin<{coin_type or '0x2::sui::SUI'}>"
        coins = self.world.owned_by(owner, wanted)
        page, next_cursor, has_next = paginate(coins, lambda item: item.object_id, cursor, limit)
        return {"data": [render.coin(item) for item in page], "nextCursor": next_cursor, "hasNextPage": has_next}

    def sui_executeTransactionBlock(self, tx_b64: str, signatures: list, options: dict | None = None, request_type: str | None = None) -> dict:
        try:
            tx_bytes = base64.b64decode(tx_b64, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidParams("transaction bytes are not base64") from exc
        if not isinstance(signatures, list) or not all(isinstance(item, str) for item in signatures):
            raise InvalidParams("signatures must be a list of base64 strings")
        done = self.world.apply_transaction(tx_bytes, signatures)
        with self.world.lock:
            effects = render.effects(done, self.world.objects, self.world.epoch)
        result: dict = {"digest": done.digest, "confirmedLocalExecution": True, "effects": effects}
        if (options or {}).get("showObjectChanges"):
            result["objectChanges"] = list(done.object_changes)
        return result

    def sui_getTransactionBlock(self, digest: str, options: dict | None = None) -> dict:
        with self.world.lock:
            found = next((tx for tx in self.world.transactions if tx.digest == digest), None)
        if found is None:
            raise InvalidParams(f"Could not find the referenced transaction [TransactionDigest({digest})]")
        return render.transaction(found, options or {})

    def sui_getChainIdentifier(self) -> str:
        return CHAIN_IDENTIFIER
