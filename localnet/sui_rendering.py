"""JSON-RPC renderings of the localnet world's objects, dynamic fields, events and transactions,
in the shapes a Sui full node returns (``SuiObjectResponse``, ``DynamicFieldInfo``, ``SuiEvent``, …).
"""

from __future__ import annotations

import base64
from typing import Any

from chain import bcs
from chain.address import normalize_address
from chain.move_json import normalize_type
from localnet import move_values
from localnet.object_store import StoredEvent, StoredObject, StoredTransaction

_NOT_PUBLIC_TRANSFER = ("::account::AccountRegistry", "0x2::dynamic_field::Field<")


def owner(item: StoredObject) -> object:
    return item.owner


def object_response(item: StoredObject | None, requested_id: str, options: dict) -> dict:
    if item is None:
        try:
            requested_id = normalize_address(requested_id)
        except ValueError:
            pass
        return {"error": {"code": "notExists", "object_id": requested_id}}
    data: dict = {"objectId": item.object_id, "version": str(item.version), "digest": item.digest}
    if options.get("showType"):
        data["type"] = item.type
    if options.get("showOwner"):
        data["owner"] = item.owner
    if options.get("showPreviousTransaction"):
        data["previousTransaction"] = item.previous_transaction
    if options.get("showContent"):
        if item.contents is None:
            data["content"] = {"dataType": "package", "disassembled": {}}
        else:
            data["content"] = {
                "dataType": "moveObject",
                "type": item.type,
                "hasPublicTransfer": not any(marker in item.type for marker in _NOT_PUBLIC_TRANSFER),
                "fields": move_values.jsonrpc_fields(item.contents),
            }
    return {"data": data}


def dynamic_field_info(item: StoredObject) -> dict:
    name = item.contents.fields["name"]  # type: ignore[union-attr]
    value_type = item.type[len("0x2::dynamic_field::Field<") : -1].split(", ", 1)[1]
    return {
        "name": {"type": item.name_type, "value": move_values.to_jsonrpc(name)},
        "bcsEncoding": "base64",
        "bcsName": base64.b64encode(move_values.name_bcs(name)).decode("ascii"),
        "type": "DynamicField",
        "objectType": value_type,
        "objectId": item.object_id,
        "version": item.version,
        "digest": item.digest,
    }


def name_bcs_from_json(name: dict[str, Any]) -> bytes:
    """BCS of a JSON-RPC dynamic-field name ``{type, value}`` (address, vector<u8>, u64, String)."""
    name_type, value = name["type"], name.get("value")
    if name_type == "address" or name_type == "0x2::object::ID":
        return bcs.address(normalize_address(str(value)))
    if name_type == "vector<u8>":
        if isinstance(value, str):
            return bcs.byte_vector(base64.b64decode(value, validate=True))
        if not isinstance(value, list) or not all(isinstance(item, int) and 0 <= item < 256 for item in value):
            raise ValueError("vector<u8> name must be a number array or base64")
        return bcs.byte_vector(bytes(value))
    if name_type == "u64":
        if not isinstance(value, int | str):
            raise ValueError("u64 name must be a number or a decimal string")
        return bcs.u64(int(value))
    if name_type == "0x1::string::String":
        return bcs.string(str(value))
    raise ValueError(f"unsupported dynamic field name type {name_type!r}")


def event_matches(event: StoredEvent, query: dict) -> bool:
    if not isinstance(query, dict) or len(query) != 1:
        raise ValueError("event filter must have exactly one key")
    (kind, wanted), = query.items()
    if kind == "MoveEventType":
        return normalize_type(event.type) == normalize_type(wanted)
    if kind == "Sender":
        return event.sender == normalize_address(wanted)
    if kind == "Transaction":
        return event.tx_digest == wanted
    raise ValueError(f"unsupported event filter {kind!r}")


def event(item: StoredEvent) -> dict:
    return {
        "id": {"txDigest": item.tx_digest, "eventSeq": str(item.event_seq)},
        "packageId": item.package_id,
        "transactionModule": item.module,
        "sender": item.sender,
        "type": item.type,
        "parsedJson": move_values.jsonrpc_fields(item.contents),
        "timestampMs": str(item.timestamp_ms),
    }


def transaction(item: StoredTransaction, options: dict) -> dict:
    rendered: dict = {"digest": item.digest, "timestampMs": str(item.timestamp_ms)}
    if options.get("showObjectChanges"):
        rendered["objectChanges"] = list(item.object_changes)
    return rendered


def effects(item: StoredTransaction, current: dict[str, StoredObject], epoch: int) -> dict:
    """``SuiTransactionBlockEffects``: created/mutated ``{owner, reference}`` plus the gas object."""

    def entry(object_id: str) -> dict:
        found = current[object_id]
        return {"owner": found.owner, "reference": {"objectId": found.object_id, "version": found.version,
                                                    "digest": found.digest}}

    rendered: dict = {"messageVersion": "v1", "status": {"status": "success"}, "transactionDigest": item.digest,
                      "executedEpoch": str(epoch), "created": [], "mutated": []}
    for change in item.object_changes:
        if change["type"] in ("created", "mutated", "transferred") and change["objectId"] in current:
            rendered["created" if change["type"] == "created" else "mutated"].append(entry(change["objectId"]))
    if item.gas_object is not None:
        rendered["gasObject"] = entry(item.gas_object)
    return rendered


def coin(item: StoredObject) -> dict:
    return {
        "coinType": item.type[len("0x2::coin::Coin<") : -1],
        "coinObjectId": item.object_id,
        "version": str(item.version),
        "digest": item.digest,
        "balance": str(item.contents.fields["balance"].value),  # type: ignore[union-attr]
        "previousTransaction": item.previous_transaction,
    }
